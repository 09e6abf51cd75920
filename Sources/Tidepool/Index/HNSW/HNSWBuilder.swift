import Atomics
import Foundation
import TidepoolKernels

/// Builds an HNSW graph (Malkov & Yashunin) over a row-major vector block, on
/// several threads, directly into the fixed-size lists of layout version 1 (`FixedGraphLayout`), re-encoded
/// as version 3 (`VarintGraph`) when a segment is written. Neighbour selection is
/// the paper's heuristic (as in hnswlib); each node's link lists are guarded by
/// a one-byte spin lock, so threads insert concurrently.
final class HNSWBuilder: @unchecked Sendable {
    let count: Int
    let dimension: Int
    let m: Int
    let m0: Int
    let efConstruction: Int
    let vectors: UnsafePointer<Float>
    let distance: DistanceFunction
    let layout: FixedGraphLayout

    /// The whole graph block, laid out as `FixedGraphLayout` (its header is written only when
    /// the block is exported as a version-1 graph, for tests).
    let block: UnsafeMutableRawPointer
    let levels: UnsafeMutablePointer<UInt8>
    let upperOffsets: UnsafeMutablePointer<UInt32>
    let level0: UnsafeMutablePointer<UInt32>
    let upper: UnsafeMutablePointer<UInt32>
    private let locks: UnsafeMutablePointer<UnsafeAtomic<UInt8>.Storage>
    let globalLock = NSLock()
    /// Guarded by `globalLock` while rows are inserted.
    var entryPoint: UInt32 = 0
    var maxLevel = 0
    /// Whether a node has been made the entry point (guarded by `globalLock`).
    private var hasEntry = false
    /// Per row, non-zero for a row without a vector: never inserted, so no list links it and it
    /// is never the entry point (nil: every row has one). Owned by the caller, who keeps it alive.
    let skip: UnsafePointer<UInt8>?

    @inline(__always) func skips(_ row: Int) -> Bool { skip.map { $0[row] != 0 } ?? false }

    init(
        vectors: UnsafePointer<Float>, count: Int, dimension: Int, metric: Metric, parameters: HNSWParameters,
        seed: UInt64 = 100, skip: UnsafePointer<UInt8>? = nil
    ) throws {
        self.count = count
        self.skip = skip
        self.dimension = dimension
        self.m = parameters.m
        self.m0 = parameters.m * 2
        self.efConstruction = max(parameters.efConstruction, parameters.m)
        self.vectors = vectors
        self.distance = DistanceFunction(metric: metric, dimension: dimension)

        // Levels first (deterministic for a seed), so the upper lists can be laid out up front.
        var rng = SplitMix64(seed: seed)
        let mult = 1 / log(Double(max(parameters.m, 2)))
        var lv = [UInt8](repeating: 0, count: count)
        var upperWords = 0
        for i in 0..<count {
            let u = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-12)
            let l = min(Int(-log(u) * mult), 32)
            lv[i] = UInt8(l)
            upperWords += l * (parameters.m + 1)
        }
        layout = FixedGraphLayout(m: m, m0: m0, count: count, upperWords: upperWords)
        // calloc: a memtable's graph is sized for its capacity, and pages of rows never
        // inserted are never touched.
        let zeroed = calloc(1, max(layout.totalBytes, 64)), lockBytes = calloc(max(count, 1), 1)
        guard let zeroed, let lockBytes else {
            free(zeroed)
            free(lockBytes)
            throw TidepoolError.invalidArgument("no memory for an HNSW graph of \(count) nodes (\(layout.totalBytes) bytes)")
        }
        block = zeroed
        levels = (block + layout.levelsOffset).assumingMemoryBound(to: UInt8.self)
        upperOffsets = (block + layout.upperOffsetsOffset).assumingMemoryBound(to: UInt32.self)
        level0 = (block + layout.level0Offset).assumingMemoryBound(to: UInt32.self)
        upper = (block + layout.upperOffset).assumingMemoryBound(to: UInt32.self)
        var next = 0
        for i in 0..<count {
            levels[i] = lv[i]
            if lv[i] > 0 {
                upperOffsets[i] = UInt32(next)
                next += Int(lv[i]) * (m + 1)
            } else {
                upperOffsets[i] = FixedGraphLayout.none
            }
        }
        locks = lockBytes.bindMemory(to: UnsafeAtomic<UInt8>.Storage.self, capacity: max(count, 1))
    }

    deinit {
        free(block)
        free(locks)
    }

    @inline(__always) func vec(_ i: UInt32) -> UnsafePointer<Float> { vectors + Int(i) * dimension }

    @inline(__always)
    func links(_ node: UInt32, _ level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return level0 + Int(node) * (m0 + 1) }
        return upper + Int(upperOffsets[Int(node)]) + (level - 1) * (m + 1)
    }

    @inline(__always)
    func lock(_ node: UInt32) {
        let a = UnsafeAtomic<UInt8>(at: locks + Int(node))
        var spins = 0
        while !a.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            spins += 1
            if spins > 64 { sched_yield(); spins = 0 }
        }
    }

    @inline(__always)
    func unlock(_ node: UInt32) {
        UnsafeAtomic<UInt8>(at: locks + Int(node)).store(0, ordering: .releasing)
    }

    /// Inserts every row, using `threads` threads, in `order` (a permutation of the rows; nil:
    /// ascending). Rows that arrive grouped by similarity (a compaction of segments stored in
    /// cluster order) must be inserted in a shuffled order: inserted cluster by cluster, HNSW
    /// leaves nodes unreachable (20-22 of 6,000 with no in-links instead of 4-6 in the cluster-order test;
    /// `linkStrandedNodes` links in those that remain when a segment is written).
    func build(threads: Int, order: [UInt32]? = nil) {
        guard count > 0 else { return }
        precondition(order == nil || order!.count == count, "an insertion order must name every row once")
        // The entry point is the first row in the order that has a vector.
        var first = 0
        while first < count && skips(Int(order?[first] ?? UInt32(first))) { first += 1 }
        guard first < count else { return }
        entryPoint = order?[first] ?? UInt32(first)
        maxLevel = Int(levels[Int(entryPoint)])
        hasEntry = true
        let nextNode = ManagedAtomic<Int>(first + 1)
        let workers = max(1, min(threads, count / 1000 + 1))
        runOnBuildThreads(workers) { _ in
            let ctx = InsertContext(capacity: count, ef: efConstruction, m0: m0)
            while true {
                let start = nextNode.loadThenWrappingIncrement(by: 64, ordering: .relaxed)
                if start >= count { break }
                for i in start..<min(start + 64, count) {
                    let row = order?[i] ?? UInt32(i)
                    if !skips(Int(row)) { insert(row, ctx) }
                }
            }
        }
    }

    // MARK: Incremental building (the in-memory tier's graph)
    //
    // The builder is sized for a memtable's capacity; rows are inserted as they arrive, in
    // ascending batches, while searches read the graph through `HNSWLinks` under each node's lock.

    private var contexts: [InsertContext] = []

    /// Inserts rows `range` (ascending; rows below `range` already inserted) on `threads` threads,
    /// until `stop` says so (checked every 32 rows; the graph is then left partly built).
    /// Callers serialize calls; searches may run concurrently.
    func insert(rows range: Range<Int>, threads: Int, stop: @Sendable () -> Bool = { false }) {
        guard !range.isEmpty else { return }
        var start = range.lowerBound
        if !globalLock.withLock({ hasEntry }) {
            // The first row with a vector is the first entry point and needs no links.
            while start < range.upperBound && skips(start) { start += 1 }
            guard start < range.upperBound else { return }
            globalLock.withLock {
                entryPoint = UInt32(start)
                maxLevel = Int(levels[start])
                hasEntry = true
            }
            start += 1
        }
        guard start < range.upperBound else { return }
        let workers = max(1, min(threads, (range.upperBound - start) / 256 + 1))
        while contexts.count < workers { contexts.append(InsertContext(capacity: count, ef: efConstruction, m0: m0)) }
        if workers == 1 {
            for a in stride(from: start, to: range.upperBound, by: 32) {
                if stop() { return }
                for i in a..<min(a + 32, range.upperBound) where !skips(i) { insert(UInt32(i), contexts[0]) }
            }
            return
        }
        let nextNode = ManagedAtomic<Int>(start)
        let end = range.upperBound
        // Each worker uses its own context; the array is not mutated while they run.
        nonisolated(unsafe) let ctxs = contexts
        runOnBuildThreads(workers) { w in
            while true {
                let a = nextNode.loadThenWrappingIncrement(by: 32, ordering: .relaxed)
                if a >= end || stop() { break }
                for i in a..<min(a + 32, end) where !skips(i) { insert(UInt32(i), ctxs[w]) }
            }
        }
    }

    /// The current entry point and top level, for a search running while rows are inserted.
    /// Before any row with a vector is inserted: node 0 on its own level (it has no links).
    func entry() -> (UInt32, Int) {
        globalLock.withLock { hasEntry || count == 0 ? (entryPoint, maxLevel) : (0, Int(levels[0])) }
    }

    /// The graph over the first `rows` rows (all of them inserted; default all), in the stored
    /// layout (version 3), for writing a segment, renumbered by `order` (`order[new] = old`) when
    /// the segment's rows are. Nodes at or past `rows` were never inserted, and no list links to them.
    func stored(rows: Int? = nil, order: [UInt32]? = nil) -> [UInt8] {
        let rows = rows ?? count
        precondition(rows <= count)
        let (ep, top) = entry()
        return VarintGraph.encode(
            m: m, m0: m0, count: rows, maxLevel: top, entryPoint: ep, levels: levels,
            upperOffsets: upperOffsets, level0: level0, upper: upper, order: order)
    }

}

extension HNSWBuilder: HNSWLinks {
    @inline(__always)
    func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R {
        lock(node)
        defer { unlock(node) }
        return body(UnsafePointer(links(node, level)))
    }

    @inline(__always)
    func withLevel0<R>(_ node: UInt32, _ body: (LinkList) -> R) -> R {
        lock(node)
        defer { unlock(node) }
        return body(LinkList(fixed: links(node, 0)))
    }

    @inline(__always) func prefetchLevel0Index(_ node: UInt32) {}
    @inline(__always) func prefetchLevel0(_ node: UInt32) { tp_prefetch_range(level0 + Int(node) * (m0 + 1), (m0 + 1) * 4) }
}
