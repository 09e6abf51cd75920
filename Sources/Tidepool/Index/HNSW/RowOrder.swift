import Dispatch

/// The order a graph segment stores its rows in: grouped by a two-level k-means (about 4,096
/// rows per top cell, about 128 per leaf), so that a row's graph neighbours mostly have nearby
/// row numbers. That is what lets layout version 3 store the links as short varint gaps (55 →
/// 28–29 bytes per node on 1M × 128), and the walk then reads codes of nearby rows from nearby
/// pages. The graph itself is built in the original order first: inserting rows cluster by cluster
/// builds a poor graph (recall 0.86 instead of 0.95 at the same ef on 1M × 128).
enum RowOrder {
    /// Below this many rows the order is kept (the links then fit in a byte or two anyway).
    static let minRows = 2048
    static let rowsPerCell = 4096
    static let rowsPerLeaf = 128

    /// A seeded random permutation of `0 ..< count`: the insertion order of a graph build, so
    /// that rows read back in cluster order are not inserted cluster by cluster.
    static func shuffled(count: Int, seed: UInt64) -> [UInt32] {
        var rng = SplitMix64(seed: seed)
        var order = (0..<count).map { UInt32($0) }
        if count > 1 { for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) } }
        return order
    }

    /// `order[new] = old`: a permutation of `0 ..< count`, deterministic for a seed whatever the
    /// thread count; nil when `count` is below `minRows`.
    static func clustered(_ vectors: UnsafePointer<Float>, count: Int, dimension: Int, seed: UInt64, threads: Int) -> [UInt32]? {
        guard count >= minRows else { return nil }
        let cells = max(1, min(256, count / rowsPerCell))
        var top = [Int32](repeating: 0, count: count)
        if cells > 1 {
            let c = KMeans(k: cells, iterations: 4, maxPointsPerCentroid: 128, seed: seed, threads: threads)
                .train(vectors, count: count, dimension: dimension)
            KMeans.assign(
                vectors, count: count, dimension: dimension, centroids: c.centroids, k: cells,
                innerProduct: false, threads: threads, into: &top)
        }
        // Rows of each cell, in their original order.
        var members = [[UInt32]](repeating: [], count: cells)
        for r in 0..<count { members[Int(top[r])].append(UInt32(r)) }

        // Each cell split into leaves, cells in parallel (one thread each, so the result does not
        // depend on scheduling).
        var ordered = [[UInt32]](repeating: [], count: cells)
        let workers = max(1, min(threads, cells))
        ordered.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let o = out.baseAddress!, x = vectors
            let cellRows = members
            runOnBuildThreads(workers) { w in
                var cell = w
                while cell < cells {
                    o[cell] = leafOrder(x, rows: cellRows[cell], dimension: dimension, seed: seed &+ UInt64(cell) &+ 1)
                    cell += workers
                }
            }
        }
        var order: [UInt32] = []
        order.reserveCapacity(count)
        for cell in ordered { order.append(contentsOf: cell) }
        return order
    }

    /// `rows` grouped by nearest leaf centroid (stable within a leaf).
    private static func leafOrder(_ vectors: UnsafePointer<Float>, rows: [UInt32], dimension: Int, seed: UInt64) -> [UInt32] {
        let leaves = rows.count / rowsPerLeaf
        guard leaves > 1 else { return rows }
        let block = UnsafeMutablePointer<Float>.allocate(capacity: rows.count * dimension)
        defer { block.deallocate() }
        for (i, r) in rows.enumerated() { (block + i * dimension).update(from: vectors + Int(r) * dimension, count: dimension) }
        let c = KMeans(k: leaves, iterations: 4, maxPointsPerCentroid: 128, seed: seed, threads: 1)
            .train(block, count: rows.count, dimension: dimension)
        var leaf = [Int32](repeating: 0, count: rows.count)
        KMeans.assign(
            block, count: rows.count, dimension: dimension, centroids: c.centroids, k: leaves,
            innerProduct: false, threads: 1, into: &leaf)
        let sorted = (0..<rows.count).sorted { (leaf[$0], $0) < (leaf[$1], $1) }
        return sorted.map { rows[$0] }
    }
}
