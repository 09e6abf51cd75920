import Dispatch
import TidepoolKernels

/// Product quantization: the vector split into `m` sub-vectors of `dimension / m` floats, each
/// replaced by the index of its nearest of 256 centroids learned by k-means on that sub-space
/// (one byte per sub-vector: 128-d f32 at m = 32 is 16× smaller).
///
/// Distances are asymmetric: per query, a table of the query's distance to every centroid of
/// every sub-space (`m × 256` floats), then a code's distance is the sum of `m` table entries
/// (`tp_pq_table.scan`). For L2 that sum is the exact distance to the decoded vector; for inner
/// products it is the negated inner product with it.
struct ProductQuantizer: Equatable {
    let dimension: Int
    let m: Int
    var subDimension: Int { dimension / m }
    /// `m × 256 × subDimension` floats: sub-space j's centroid c at `(j·256 + c)·subDimension`.
    let codebooks: [Float]
    /// The codebooks transposed (`(j·subDimension + d)·256 + c`) and their squared norms
    /// (`j·256 + c`), for the vectorized L2 table kernel.
    let transposed: [Float]
    let norms: [Float]

    init(dimension: Int, m: Int, codebooks: [Float]) {
        self.dimension = dimension
        self.m = m
        self.codebooks = codebooks
        let ds = dimension / m
        var t = [Float](repeating: 0, count: codebooks.count)
        var n = [Float](repeating: 0, count: m * 256)
        for j in 0..<m {
            for c in 0..<256 {
                for d in 0..<ds {
                    let v = codebooks[(j * 256 + c) * ds + d]
                    t[(j * ds + d) * 256 + c] = v
                    n[j * 256 + c] += v * v
                }
            }
        }
        transposed = t
        norms = n
    }

    static func == (a: ProductQuantizer, b: ProductQuantizer) -> Bool {
        a.dimension == b.dimension && a.m == b.m && a.codebooks == b.codebooks
    }

    /// The squared-L2 table of a residual `t` (query minus a list centroid), `m × 256` floats.
    @inline(__always)
    func tableL2(_ t: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, kernel: tp_pq_table_fn) {
        transposed.withUnsafeBufferPointer { b in
            norms.withUnsafeBufferPointer { n in kernel(t, b.baseAddress!, n.baseAddress!, m, dimension / m, out) }
        }
    }

    static let centroidsPerSpace = 256

    /// Learns the codebooks from (a sample of) `count` row-major vectors.
    static func train(
        _ vectors: UnsafePointer<Float>, count: Int, dimension: Int, m: Int, seed: UInt64,
        threads: Int
    ) -> ProductQuantizer {
        let ds = dimension / m
        let sampleCount = min(count, 256 * centroidsPerSpace)
        let stride = max(1, count / sampleCount)
        var books = [Float](repeating: 0, count: m * centroidsPerSpace * ds)
        let sub = UnsafeMutablePointer<Float>.allocate(capacity: sampleCount * ds)
        defer { sub.deallocate() }
        for j in 0..<m {
            for i in 0..<sampleCount { (sub + i * ds).update(from: vectors + (i * stride) * dimension + j * ds, count: ds) }
            let r = KMeans(k: centroidsPerSpace, iterations: 15, seed: seed &+ UInt64(j), threads: threads)
                .train(sub, count: sampleCount, dimension: ds)
            for x in 0..<(centroidsPerSpace * ds) { books[j * centroidsPerSpace * ds + x] = r.centroids[x] }
        }
        return ProductQuantizer(dimension: dimension, m: m, codebooks: books)
    }

    /// Encodes `count` row-major vectors into `count × m` bytes, in parallel.
    func encode(_ vectors: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt8>, threads: Int) {
        let ds = subDimension, m = self.m, dim = dimension
        let packed = (0..<m).map { j in
            PackedCentroids(Array(codebooks[(j * 256 * ds)..<((j + 1) * 256 * ds)]), k: 256, dimension: ds, innerProduct: false)
        }
        let chunk = 1024
        let chunks = (count + chunk - 1) / chunk
        let workers = max(1, min(threads, chunks))
        nonisolated(unsafe) let src = vectors, dst = out
        runOnBuildThreads(workers) { w in
            let sub = UnsafeMutablePointer<Float>.allocate(capacity: chunk * ds)
            let best = UnsafeMutablePointer<Int32>.allocate(capacity: chunk)
            let score = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
            defer { sub.deallocate(); best.deallocate(); score.deallocate() }
            var c = w
            while c < chunks {
                let start = c * chunk, n = min(chunk, count - start)
                for j in 0..<m {
                    for i in 0..<n { (sub + i * ds).update(from: src + (start + i) * dim + j * ds, count: ds) }
                    packed[j].assign(sub, count: n, best: best, score: score)
                    for i in 0..<n { dst[(start + i) * m + j] = UInt8(truncatingIfNeeded: best[i]) }
                }
                c += workers
            }
        }
    }

    func decode(_ code: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        let ds = subDimension
        for j in 0..<m {
            let c = Int(code[j])
            for d in 0..<ds { out[j * ds + d] = codebooks[(j * 256 + c) * ds + d] }
        }
    }

    /// The query's inner-product table, `m × 256` floats, negated (the engine's smaller-is-closer
    /// distance): for inner-product metrics one table serves every list. Squared L2 uses
    /// ``tableL2(_:into:kernel:)`` of the query's residual to each list centroid.
    func dotTable(_ q: UnsafePointer<Float>, into t: UnsafeMutablePointer<Float>) {
        let ds = subDimension
        codebooks.withUnsafeBufferPointer { cb in
            let book = cb.baseAddress!
            for j in 0..<m {
                let qs = q + j * ds
                for c in 0..<256 {
                    let v = book + (j * 256 + c) * ds
                    var s: Float = 0
                    for d in 0..<ds { s += qs[d] * v[d] }
                    t[j * 256 + c] = -s
                }
            }
        }
    }

    /// The default number of sub-spaces: a quarter of the dimension (4 floats per byte, 16×
    /// smaller), or the largest divisor of the dimension not above that.
    static func defaultSubspaces(dimension: Int) -> Int {
        var m = max(1, dimension / 4)
        while dimension % m != 0 { m -= 1 }
        return m
    }
}
