import Foundation
import TidepoolKernels

/// RaBitQ (Gao & Long, SIGMOD 2024): one bit per dimension plus three floats per vector, with an
/// unbiased estimate of the inner product and a bound on its error, so candidates can be
/// pruned with a guarantee before the exact re-rank.
///
/// A vector `o` in an IVF list with centroid `c` is stored as its residual `o − c`: its norm,
/// and the signs of its rotated unit direction `R(o − c)/|o − c|` (R a random orthogonal
/// matrix), i.e. the nearest vertex `x̄` of the hypercube {±1/√D}^D. For a query, `x̄·q'` is
/// computed with popcounts against the query's rotated direction quantized to 4 bits, and
/// `x̄·q' / x̄·o'` estimates `o'·q'`; with probability about 1 − 2·exp(−c·ε0²) its error is below
/// `ε0 · √((1 − (x̄·o')²) / (x̄·o')²) / √(D − 1)`, plus the (deterministic) query rounding term.
/// Vectors are stored as `words` u64 of sign bits and `factorCount` floats.
struct RaBitQ {
    let dimension: Int
    /// `dimension × dimension`, row-major: the rotated vector is `rotation · x`.
    let rotation: [Float]
    var words: Int { (dimension + 63) / 64 }
    /// The paper's confidence parameter: 1.9 keeps the failure rate near 0.1% in practice.
    static let epsilon0: Float = 1.9
    /// Floats stored per vector: |o − c|, x̄·o', (o − c)·c, and the bound's spread term
    /// ε0·√((1 − x̄·o'²)/x̄·o'²)/√(D − 1) (precomputed: a square root per row per query is not free).
    static let factorCount = 4

    /// A random orthogonal matrix (modified Gram–Schmidt on a seeded Gaussian matrix).
    static func randomRotation(dimension d: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        func gauss() -> Double {
            let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(rng.next() >> 11) / Double(1 << 53)
            return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        }
        var m = (0..<(d * d)).map { _ in gauss() }
        m.withUnsafeMutableBufferPointer { a in
            for i in 0..<d {
                let row = a.baseAddress! + i * d
                for _ in 0..<2 {  // twice is enough for orthogonality in floating point
                    for j in 0..<i {
                        let other = a.baseAddress! + j * d
                        var dot = 0.0
                        for x in 0..<d { dot += row[x] * other[x] }
                        for x in 0..<d { row[x] -= dot * other[x] }
                    }
                }
                var norm = 0.0
                for x in 0..<d { norm += row[x] * row[x] }
                norm = norm.squareRoot()
                for x in 0..<d { row[x] /= norm }
            }
        }
        return m.map { Float($0) }
    }

    /// `out = rotation · x`.
    @inline(__always)
    func rotate(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        rotation.withUnsafeBufferPointer { r in
            tp_f32_kernels().pointee.dot_batch(x, r.baseAddress!, dimension, dimension, out)
        }
    }

    /// Encodes `v` against `centroid`: `words` code words and the three factors. `work` holds
    /// 2·dimension floats.
    func encode(
        _ v: UnsafePointer<Float>, centroid c: UnsafePointer<Float>, code: UnsafeMutablePointer<UInt64>,
        factors: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Float>
    ) {
        let d = dimension
        let residual = work, rotated = work + d
        var norm2: Float = 0, oc: Float = 0
        for i in 0..<d {
            residual[i] = v[i] - c[i]
            norm2 += residual[i] * residual[i]
            oc += residual[i] * c[i]
        }
        rotate(residual, into: rotated)
        for w in 0..<words { code[w] = 0 }
        var absSum: Float = 0
        for i in 0..<d {
            if rotated[i] > 0 { code[i >> 6] |= 1 << UInt64(i & 63) }
            absSum += abs(rotated[i])
        }
        let norm = norm2.squareRoot()
        factors[0] = norm
        // x̄·o' = Σ|u_i|/√D for the unit direction u; 1 when o = c (its term is multiplied by 0).
        factors[1] = norm > 0 ? max(absSum / norm / Float(d).squareRoot(), 1e-6) : 1
        factors[2] = oc
        factors[3] = bound(ipBarO: factors[1])
    }

    /// A query prepared against one list: its rotated residual direction as 4 bit planes.
    struct PreparedList {
        var queryNorm: Float = 0
        var lower: Float = 0
        var delta: Float = 1
        var sum: Float = 0
        /// q·c, for inner-product metrics.
        var queryDotCentroid: Float = 0
    }

    /// Prepares the query for a list whose rotated centroid is `rotatedCentroid`, given the
    /// rotated query `rotatedQuery`; writes 4·words plane words into `planes`; `work` holds
    /// `dimension` floats.
    func prepare(
        rotatedQuery rq: UnsafePointer<Float>, rotatedCentroid rc: UnsafePointer<Float>,
        planes: UnsafeMutablePointer<UInt64>, work t: UnsafeMutablePointer<Float>
    ) -> PreparedList {
        let d = dimension
        var p = PreparedList()
        var n2: Float = 0
        for i in 0..<d { t[i] = rq[i] - rc[i]; n2 += t[i] * t[i] }
        p.queryNorm = n2.squareRoot()
        for w in 0..<(4 * words) { planes[w] = 0 }
        guard p.queryNorm > 0 else { return p }
        var lo = Float.infinity, hi = -Float.infinity, sum: Float = 0
        let inv = 1 / p.queryNorm
        for i in 0..<d {
            t[i] *= inv
            lo = min(lo, t[i]); hi = max(hi, t[i])
            sum += t[i]
        }
        p.lower = lo
        p.delta = hi > lo ? (hi - lo) / 15 : 1
        p.sum = sum
        let w = words
        let invDelta = 1 / p.delta
        var i = 0
        for word in 0..<w {
            var b0: UInt64 = 0, b1: UInt64 = 0, b2: UInt64 = 0, b3: UInt64 = 0
            let end = min(d, i + 64)
            var bit: UInt64 = 1
            while i < end {
                let u = Int((t[i] - lo) * invDelta + 0.5)  // 0...15 by construction; truncation, not a libm call
                if u & 1 != 0 { b0 |= bit }
                if u & 2 != 0 { b1 |= bit }
                if u & 4 != 0 { b2 |= bit }
                if u & 8 != 0 { b3 |= bit }
                bit <<= 1
                i += 1
            }
            planes[word] = b0; planes[w + word] = b1; planes[2 * w + word] = b2; planes[3 * w + word] = b3
        }
        return p
    }

    /// The estimated engine distance (squared L2, or the negated inner product) and a lower
    /// bound on the true one, from a code's popcount sums and its factors.
    @inline(__always)
    func estimate(sum s: UInt32, pop: UInt32, factors f: UnsafePointer<Float>, _ p: PreparedList, usesDot: Bool) -> (Float, Float) {
        let d = Float(dimension)
        let rootD = d.squareRoot()
        let masked = p.delta * Float(s) + p.lower * Float(pop)
        let ipXq = (2 * masked - p.sum) / rootD
        let ipBarO = f[1]
        let ip = ipXq / ipBarO
        let err = f[3] + Float(pop) * p.delta / (rootD * ipBarO)
        let scale = f[0] * p.queryNorm
        if usesDot {
            let dist = -(p.queryDotCentroid + f[2] + scale * ip)
            return (dist, dist - scale * err)
        }
        let dist = f[0] * f[0] + p.queryNorm * p.queryNorm - 2 * scale * ip
        return (dist, dist - 2 * scale * err)
    }

    /// The error bound on the estimated unit inner product, for tests: ε0 · √((1 − x̄·o'²)/x̄·o'²) / √(D − 1).
    func bound(ipBarO: Float) -> Float {
        RaBitQ.epsilon0 * ((1 - ipBarO * ipBarO) / (ipBarO * ipBarO)).squareRoot() / max(1, Float(dimension) - 1).squareRoot()
    }
}
