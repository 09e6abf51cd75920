/// What a vector must be to be stored or searched for: finite components, and a squared norm
/// small enough that every distance the engine computes from it stays finite in float32 — the
/// squared L2 distance between two accepted vectors (at most 4× the bound), an inner product
/// (at most the bound), and the PQ tables of residuals to list centroids (at most 16× it). A
/// vector near ±3e38 passes `isFinite` but overflows every one of those, so it is refused at
/// the door rather than poisoning k-means, graphs and rankings later. Cosine vectors are
/// normalized here, so any finite non-zero vector is accepted under cosine.
enum VectorCheck {
    /// The largest squared norm accepted under `l2` and `innerProduct` (about 5.3e36).
    static let maxSquaredNorm = Double(Float.greatestFiniteMagnitude) / 64

    /// Checks `v` and, under cosine, normalizes it; `what` names it in errors.
    static func prepare(_ v: inout [Float], metric: Metric, what: String) throws {
        var norm2 = 0.0
        for (i, x) in v.enumerated() {
            guard x.isFinite else { throw TidepoolError.invalidArgument("\(what) has a non-finite value (\(x)) at index \(i)") }
            norm2 += Double(x) * Double(x)
        }
        if metric == .cosine {
            guard norm2 > 0 else { throw TidepoolError.invalidArgument("\(what) is a zero vector, which has no cosine") }
            // In float32 as always (the same stored bits as before), unless that overflows or underflows.
            var norm: Float = 0
            for x in v { norm += x * x }
            if norm.isNormal {
                let inv = 1 / norm.squareRoot()
                for i in v.indices { v[i] *= inv }
            } else {
                let inv = 1 / norm2.squareRoot()
                for i in v.indices { v[i] = Float(Double(v[i]) * inv) }
            }
            return
        }
        guard norm2 <= maxSquaredNorm else {
            throw TidepoolError.invalidArgument(
                "\(what) has squared norm \(norm2), above the \(maxSquaredNorm) accepted: distances to it would overflow float32")
        }
    }
}
