import Dispatch
import TidepoolKernels

/// Lloyd's k-means, deterministic for a seed whatever the thread count.
///
/// Seeding is k-means++ (D² sampling) over a subsample of at most `8·k` points, which costs a
/// small fraction of one Lloyd pass; training then runs on at most `maxPointsPerCentroid · k`
/// sampled points (FAISS's rule too). The assignment step is a blocked matrix product in the
/// kernels target (`tp_kmeans_kernels`), split across threads by point ranges; the update step sums
/// in Double, serially, so the result never depends on scheduling.
struct KMeans {
    var k: Int
    var iterations: Int = 10
    var maxPointsPerCentroid: Int = 256
    var seed: UInt64 = 1
    var threads: Int = 1

    struct Result {
        /// `k × dimension` row-major centroids.
        var centroids: [Float]
        /// Mean squared distance of the training points to their centroid after the last pass.
        var meanSquaredError: Double
        var trainingPoints: Int
    }

    func train(_ vectors: UnsafePointer<Float>, count: Int, dimension: Int) -> Result {
        precondition(k >= 1 && count >= 1, "k-means needs points and k >= 1")
        var rng = SplitMix64(seed: seed)
        // Training sample: a seeded partial shuffle when the data is larger than needed.
        let limit = max(k, maxPointsPerCentroid * k)
        let sampleCount = min(count, limit)
        let sample = UnsafeMutablePointer<Float>.allocate(capacity: sampleCount * dimension)
        defer { sample.deallocate() }
        if sampleCount == count {
            sample.update(from: vectors, count: count * dimension)
        } else {
            var order = Array(0..<count)
            for i in 0..<sampleCount {
                let j = i + Int(rng.next() % UInt64(count - i))
                order.swapAt(i, j)
            }
            let chosen = order[0..<sampleCount].sorted()  // sequential reads of the source
            for (i, r) in chosen.enumerated() { (sample + i * dimension).update(from: vectors + r * dimension, count: dimension) }
        }
        let k = min(self.k, sampleCount)
        var centroids = seedPlusPlus(sample, count: sampleCount, dimension: dimension, k: k, rng: &rng)
        var assignment = [Int32](repeating: 0, count: sampleCount)
        var mse = 0.0
        for _ in 0..<max(1, iterations) {
            mse = KMeans.assign(
                sample, count: sampleCount, dimension: dimension, centroids: centroids, k: k,
                innerProduct: false, threads: threads, into: &assignment)
            centroids = update(sample, count: sampleCount, dimension: dimension, k: k, assignment: assignment, previous: centroids)
        }
        if k < self.k {
            // Fewer points than centroids: repeat centroids so the caller still gets k.
            for j in k..<self.k { centroids += Array(centroids[(j % k) * dimension..<(j % k + 1) * dimension]) }
        }
        return Result(centroids: centroids, meanSquaredError: mse, trainingPoints: sampleCount)
    }

    /// k-means++ over a subsample: each next seed drawn with probability proportional to its
    /// squared distance from the seeds so far.
    private func seedPlusPlus(
        _ x: UnsafePointer<Float>, count: Int, dimension: Int, k: Int,
        rng: inout SplitMix64
    ) -> [Float] {
        let n = min(count, max(8 * k, 1024))
        // The sample is already in random order when it was subsampled; take a seeded stride otherwise.
        let stride = max(1, count / n)
        let points = (0..<n).map { $0 * stride }
        let l2 = tp_f32_kernels().pointee.l2sq
        var out = [Float](repeating: 0, count: k * dimension)
        var dist = [Float](repeating: .infinity, count: n)
        var chosen = points[Int(rng.next() % UInt64(n))]
        out.withUnsafeMutableBufferPointer { o in
            for c in 0..<k {
                (o.baseAddress! + c * dimension).update(from: x + chosen * dimension, count: dimension)
                if c == k - 1 { break }
                var total = 0.0
                let cp = x + chosen * dimension
                for i in 0..<n {
                    let d = l2(x + points[i] * dimension, cp, dimension)
                    if d < dist[i] { dist[i] = d }
                    total += Double(dist[i])
                }
                if total <= 0 {
                    chosen = points[Int(rng.next() % UInt64(n))]
                    continue
                }
                var target = Double(rng.next() >> 11) / Double(1 << 53) * total
                var pick = n - 1
                for i in 0..<n {
                    target -= Double(dist[i])
                    if target < 0 { pick = i; break }
                }
                chosen = points[pick]
            }
        }
        return out
    }

    /// Means of the assigned points; an empty cluster takes half of the largest one (its
    /// centroid split in two by a small symmetric perturbation).
    private func update(
        _ x: UnsafePointer<Float>, count: Int, dimension: Int, k: Int, assignment: [Int32],
        previous: [Float]
    ) -> [Float] {
        var sums = [Double](repeating: 0, count: k * dimension)
        var sizes = [Int](repeating: 0, count: k)
        sums.withUnsafeMutableBufferPointer { s in
            for i in 0..<count {
                // The kernel never returns an index out of range; a clamp keeps a bad one from trapping.
                let c = min(max(Int(assignment[i]), 0), k - 1)
                sizes[c] += 1
                let row = x + i * dimension
                let dst = s.baseAddress! + c * dimension
                for d in 0..<dimension { dst[d] += Double(row[d]) }
            }
        }
        var out = previous
        for c in 0..<k where sizes[c] > 0 {
            let inv = 1 / Double(sizes[c])
            for d in 0..<dimension { out[c * dimension + d] = Float(sums[c * dimension + d] * inv) }
        }
        for c in 0..<k where sizes[c] == 0 {
            guard let big = sizes.indices.max(by: { sizes[$0] < sizes[$1] }), sizes[big] > 1 else { break }
            for d in 0..<dimension {
                let v = out[big * dimension + d]
                let eps: Float = 1.0 / 1024
                out[c * dimension + d] = v * (1 + eps) + (d % 2 == 0 ? eps : -eps) * 1e-3
                out[big * dimension + d] = v * (1 - eps) - (d % 2 == 0 ? eps : -eps) * 1e-3
            }
            sizes[c] = sizes[big] / 2
            sizes[big] -= sizes[c]
        }
        return out
    }

    /// Assigns each point to its nearest centroid (smallest squared L2, or largest inner
    /// product), in parallel; returns the mean score (squared distance for L2).
    @discardableResult
    static func assign(
        _ x: UnsafePointer<Float>, count: Int, dimension: Int, centroids: [Float], k: Int,
        innerProduct: Bool, threads: Int, into assignment: inout [Int32]
    ) -> Double {
        let packed = PackedCentroids(centroids, k: k, dimension: dimension, innerProduct: innerProduct)
        var scores = [Float](repeating: 0, count: count)
        let chunk = 240
        let chunks = (count + chunk - 1) / chunk
        let workers = max(1, min(threads, chunks))
        assignment.withUnsafeMutableBufferPointer { a in
            scores.withUnsafeMutableBufferPointer { s in
                nonisolated(unsafe) let ap = a.baseAddress!, sp = s.baseAddress!, xp = x
                runOnBuildThreads(workers) { w in
                    var c = w
                    while c < chunks {
                        let start = c * chunk, n = min(chunk, count - start)
                        packed.assign(xp + start * dimension, count: n, best: ap + start, score: sp + start)
                        c += workers
                    }
                }
            }
        }
        var total = 0.0
        if innerProduct {
            for i in 0..<count { total += Double(scores[i]) }
        } else {
            let dot = tp_f32_kernels().pointee.dot
            for i in 0..<count { total += Double(scores[i] + dot(x + i * dimension, x + i * dimension, dimension)) }
        }
        return total / Double(max(1, count))
    }
}

/// Centroids packed for the assignment kernel, with their per-centroid score bias.
struct PackedCentroids: @unchecked Sendable {
    let k: Int
    let dimension: Int
    let panels: [Float]
    let bias: [Float]
    let alpha: Float
    let kernel: tp_assign_fn

    init(_ centroids: [Float], k: Int, dimension: Int, innerProduct: Bool, kernel: tp_assign_fn = tp_kmeans_kernels().pointee.assign) {
        self.k = k
        self.dimension = dimension
        self.kernel = kernel
        var p = [Float](repeating: 0, count: tp_panel_floats(k, dimension))
        centroids.withUnsafeBufferPointer { c in
            p.withUnsafeMutableBufferPointer { tp_pack_panels(c.baseAddress!, k, dimension, $0.baseAddress!) }
        }
        panels = p
        let padded = (k + 15) / 16 * 16
        var b = [Float](repeating: .infinity, count: padded)
        let dot = tp_f32_kernels().pointee.dot
        centroids.withUnsafeBufferPointer { c in
            for j in 0..<k { b[j] = innerProduct ? 0 : dot(c.baseAddress! + j * dimension, c.baseAddress! + j * dimension, dimension) }
        }
        bias = b
        alpha = innerProduct ? -1 : -2
    }

    @inline(__always)
    func assign(_ x: UnsafePointer<Float>, count: Int, best: UnsafeMutablePointer<Int32>, score: UnsafeMutablePointer<Float>) {
        panels.withUnsafeBufferPointer { p in
            bias.withUnsafeBufferPointer { b in
                kernel(x, count, dimension, p.baseAddress!, b.baseAddress!, k, alpha, best, score)
            }
        }
    }
}
