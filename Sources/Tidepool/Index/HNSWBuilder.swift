import Atomics
import Foundation
import TidepoolKernels

/// Builds an HNSW graph (Malkov & Yashunin) over a row-major vector block, on
/// several threads, directly into the stored `HNSWLayout`. Neighbour selection is
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
    let layout: HNSWLayout

    /// The whole graph block, laid out as `HNSWLayout` (header filled by `finish`).
    let block: UnsafeMutableRawPointer
    private let levels: UnsafeMutablePointer<UInt8>
    private let upperOffsets: UnsafeMutablePointer<UInt32>
    fileprivate let level0: UnsafeMutablePointer<UInt32>
    private let upper: UnsafeMutablePointer<UInt32>
    private let locks: UnsafeMutablePointer<UnsafeAtomic<UInt8>.Storage>
    private let globalLock = NSLock()
    private var entryPoint: UInt32 = 0
    private var maxLevel = 0

    init(vectors: UnsafePointer<Float>, count: Int, dimension: Int, metric: Metric, parameters: HNSWParameters,
         seed: UInt64 = 100) {
        self.count = count
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
        layout = HNSWLayout(m: m, m0: m0, count: count, upperWords: upperWords)
        // calloc: a memtable's graph is sized for its capacity, and pages of rows never
        // inserted are never touched.
        guard let zeroed = calloc(1, max(layout.totalBytes, 64)) else { fatalError("out of memory for an HNSW graph of \(count) nodes") }
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
                upperOffsets[i] = HNSWLayout.none
            }
        }
        locks = calloc(max(count, 1), 1)!.bindMemory(to: UnsafeAtomic<UInt8>.Storage.self, capacity: max(count, 1))
    }

    deinit {
        free(block)
        free(locks)
    }

    @inline(__always) private func vec(_ i: UInt32) -> UnsafePointer<Float> { vectors + Int(i) * dimension }

    @inline(__always)
    fileprivate func links(_ node: UInt32, _ level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return level0 + Int(node) * (m0 + 1) }
        return upper + Int(upperOffsets[Int(node)]) + (level - 1) * (m + 1)
    }

    @inline(__always)
    fileprivate func lock(_ node: UInt32) {
        let a = UnsafeAtomic<UInt8>(at: locks + Int(node))
        var spins = 0
        while !a.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            spins += 1
            if spins > 64 { sched_yield(); spins = 0 }
        }
    }

    @inline(__always)
    fileprivate func unlock(_ node: UInt32) {
        UnsafeAtomic<UInt8>(at: locks + Int(node)).store(0, ordering: .releasing)
    }

    /// Inserts every row, using `threads` threads, in `order` (a permutation of the rows; nil:
    /// ascending). Rows that arrive grouped by similarity (a compaction of segments stored in
    /// cluster order) must be inserted in a shuffled order: inserted cluster by cluster, HNSW
    /// leaves nodes unreachable (20-22 of 6,000 with no in-links instead of 4-6 in the cluster-order test).
    func build(threads: Int, order: [UInt32]? = nil) {
        guard count > 0 else { return }
        precondition(order == nil || order!.count == count, "an insertion order must name every row once")
        entryPoint = order?[0] ?? 0
        maxLevel = Int(levels[Int(entryPoint)])
        let nextNode = ManagedAtomic<Int>(1)
        let workers = max(1, min(threads, count / 1000 + 1))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let ctx = InsertContext(capacity: count, ef: efConstruction, m0: m0)
            while true {
                let start = nextNode.loadThenWrappingIncrement(by: 64, ordering: .relaxed)
                if start >= count { break }
                for i in start..<min(start + 64, count) { insert(order?[i] ?? UInt32(i), ctx) }
            }
        }
    }

    // MARK: Incremental building (the in-memory tier's graph)
    //
    // The builder is sized for a memtable's capacity; rows are inserted as they arrive, in
    // ascending batches, while searches read the graph through `HNSWLinks` under each node's lock.

    private var contexts: [InsertContext] = []

    /// Inserts rows `range` (ascending; rows below `range` already inserted) on `threads` threads.
    /// Callers serialize calls; searches may run concurrently.
    func insert(rows range: Range<Int>, threads: Int) {
        guard !range.isEmpty else { return }
        var start = range.lowerBound
        if start == 0 {
            // Row 0 is the first entry point and needs no links.
            globalLock.withLock {
                entryPoint = 0
                maxLevel = Int(levels[0])
            }
            start = 1
        }
        guard start < range.upperBound else { return }
        let workers = max(1, min(threads, (range.upperBound - start) / 256 + 1))
        while contexts.count < workers { contexts.append(InsertContext(capacity: count, ef: efConstruction, m0: m0)) }
        if workers == 1 {
            for i in start..<range.upperBound { insert(UInt32(i), contexts[0]) }
            return
        }
        let nextNode = ManagedAtomic<Int>(start)
        let end = range.upperBound
        // Each worker uses its own context; the array is not mutated while they run.
        nonisolated(unsafe) let ctxs = contexts
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            while true {
                let a = nextNode.loadThenWrappingIncrement(by: 32, ordering: .relaxed)
                if a >= end { break }
                for i in a..<min(a + 32, end) { insert(UInt32(i), ctxs[w]) }
            }
        }
    }

    /// The current entry point and top level, for a search running while rows are inserted.
    func entry() -> (UInt32, Int) { globalLock.withLock { (entryPoint, maxLevel) } }

    /// The graph over the first `rows` rows (all of them inserted; default all), in the stored
    /// layout (version 3), for writing a segment, renumbered by `order` (`order[new] = old`) when
    /// the segment's rows are. Nodes at or past `rows` were never inserted, and no list links to them.
    func stored(rows: Int? = nil, order: [UInt32]? = nil) -> [UInt8] {
        let rows = rows ?? count
        precondition(rows <= count)
        let (ep, top) = entry()
        return HNSWVarintLayout.encode(m: m, m0: m0, count: rows, maxLevel: top, entryPoint: ep, levels: levels,
                                       upperOffsets: upperOffsets, level0: level0, upper: upper, order: order)
    }

    /// The graph in layout version 2, which segments written before version 3 hold; kept so tests
    /// can check that they are still read. `idBytes` and `offsetBytes` override the narrowest widths.
    func storedVersion2(idBytes: Int? = nil, offsetBytes: Int? = nil) -> [UInt8] {
        let (ep, top) = entry()
        return HNSWCompactLayout.encode(m: m, m0: m0, count: count, maxLevel: top, entryPoint: ep, levels: levels,
                                        upperOffsets: upperOffsets, level0: level0, upper: upper,
                                        idBytes: idBytes, offsetBytes: offsetBytes)
    }

    /// The builder's block as a stored graph of layout version 1 (header filled in), which
    /// segments written before version 2 hold; kept so tests can check that they are still read.
    func fixedLayoutBlock() -> UnsafeRawBufferPointer {
        var w = ByteWriter(capacity: 64)
        w.raw(HNSWLayout.magic)
        w.u32(UInt32(m))
        w.u32(UInt32(m0))
        w.u32(UInt32(maxLevel))
        w.u32(entryPoint)
        w.u64(UInt64(count))
        w.u64(UInt64(layout.upperWords))
        w.pad(toMultipleOf: 64)
        w.bytes.withUnsafeBytes { block.copyMemory(from: $0.baseAddress!, byteCount: 64) }
        return UnsafeRawBufferPointer(start: block, count: layout.totalBytes)
    }

    /// Per-thread working memory.
    final class InsertContext {
        let visited: UnsafeMutablePointer<UInt32>
        var generation: UInt32 = 0
        let candidates: UnsafeMutablePointer<Neighbor>
        let results: UnsafeMutablePointer<Neighbor>
        let resultCapacity: Int
        let sorted: UnsafeMutablePointer<Neighbor>
        let selected: UnsafeMutablePointer<Neighbor>
        let linkCopy: UnsafeMutablePointer<UInt32>
        // Separate buffers for pruning a neighbour's list, which happens while `selected` is in use.
        let pruneCandidates: UnsafeMutablePointer<Neighbor>
        let pruneSelected: UnsafeMutablePointer<Neighbor>

        init(capacity: Int, ef: Int, m0: Int) {
            visited = calloc(max(capacity, 1), 4)!.bindMemory(to: UInt32.self, capacity: max(capacity, 1))
            candidates = .allocate(capacity: capacity + 1)
            resultCapacity = ef + m0 + 2
            results = .allocate(capacity: resultCapacity)
            sorted = .allocate(capacity: resultCapacity)
            selected = .allocate(capacity: resultCapacity)
            linkCopy = .allocate(capacity: m0 + 1)
            pruneCandidates = .allocate(capacity: m0 + 2)
            pruneSelected = .allocate(capacity: m0 + 2)
        }

        deinit {
            free(visited)
            candidates.deallocate()
            results.deallocate()
            sorted.deallocate()
            selected.deallocate()
            linkCopy.deallocate()
            pruneCandidates.deallocate()
            pruneSelected.deallocate()
        }
    }

    private func insert(_ q: UInt32, _ ctx: InsertContext) {
        let level = Int(levels[Int(q)])
        globalLock.lock()
        var ep = entryPoint
        let topLevel = maxLevel
        let raisesTop = level > topLevel
        // Rare: a node that raises the top level holds the global lock for its whole insertion.
        if !raisesTop { globalLock.unlock() }
        defer {
            if raisesTop {
                entryPoint = q
                maxLevel = level
                globalLock.unlock()
            }
        }

        let qv = vec(q)
        var epDist = distance(qv, vec(ep))
        if topLevel > level {
            for l in stride(from: topLevel, to: level, by: -1) {
                var changed = true
                while changed {
                    changed = false
                    lock(ep)
                    let list = links(ep, l)
                    let n = Int(list[0])
                    for j in 0...n { ctx.linkCopy[j] = list[j] }
                    unlock(ep)
                    for j in 0..<n {
                        let c = ctx.linkCopy[1 + j]
                        let d = distance(qv, vec(c))
                        if d < epDist {
                            epDist = d
                            ep = c
                            changed = true
                        }
                    }
                }
            }
        }

        for l in stride(from: min(level, topLevel), through: 0, by: -1) {
            let found = searchLayer(query: qv, entry: ep, entryDist: epDist, level: l, ctx: ctx)
            // Sort the beam ascending.
            let sorted = ctx.sorted
            for i in 0..<found { sorted[i] = ctx.results[i] }
            sortNeighbors(sorted, found)
            ep = sorted[0].id
            epDist = sorted[0].dist
            let chosen = selectNeighbors(sorted, found, limit: m, selected: ctx.selected)
            lock(q)
            let own = links(q, l)
            own[0] = UInt32(chosen)
            for i in 0..<chosen { own[1 + i] = ctx.selected[i].id }
            unlock(q)
            let cap = l == 0 ? m0 : m
            for i in 0..<chosen {
                let e = ctx.selected[i].id
                link(e, to: q, distance: ctx.selected[i].dist, level: l, cap: cap, ctx: ctx)
            }
        }
    }

    /// Adds `q` to `e`'s list at `level`, pruning with the heuristic when full.
    private func link(_ e: UInt32, to q: UInt32, distance dq: Float, level: Int, cap: Int, ctx: InsertContext) {
        lock(e)
        defer { unlock(e) }
        let list = links(e, level)
        let n = Int(list[0])
        for j in 0..<n where list[1 + j] == q { return }
        if n < cap {
            list[1 + n] = q
            list[0] = UInt32(n + 1)
            return
        }
        let ev = vec(e)
        let cand = ctx.pruneCandidates
        cand[0] = Neighbor(dist: dq, id: q)
        for j in 0..<n {
            let c = list[1 + j]
            cand[1 + j] = Neighbor(dist: distance(ev, vec(c)), id: c)
        }
        sortNeighbors(cand, n + 1)
        let chosen = selectNeighbors(cand, n + 1, limit: cap, selected: ctx.pruneSelected)
        list[0] = UInt32(chosen)
        for i in 0..<chosen { list[1 + i] = ctx.pruneSelected[i].id }
    }

    /// The paper's heuristic: keep a candidate only if it is closer to the base
    /// than to every neighbour already kept. `sorted` is ascending.
    private func selectNeighbors(_ sorted: UnsafeMutablePointer<Neighbor>, _ n: Int, limit: Int,
                                 selected: UnsafeMutablePointer<Neighbor>) -> Int {
        if n <= limit {
            for i in 0..<n { selected[i] = sorted[i] }
            return n
        }
        var kept = 0
        for i in 0..<n {
            if kept >= limit { break }
            let c = sorted[i]
            let cv = vec(c.id)
            var good = true
            for j in 0..<kept where distance(cv, vec(selected[j].id)) < c.dist {
                good = false
                break
            }
            if good {
                selected[kept] = c
                kept += 1
            }
        }
        return kept
    }

    private func sortNeighbors(_ p: UnsafeMutablePointer<Neighbor>, _ n: Int) {
        // Insertion sort: n is at most efConstruction + m0, and mostly nearly sorted.
        if n < 2 { return }
        for i in 1..<n {
            let x = p[i]
            var j = i - 1
            while j >= 0 && p[j].dist > x.dist {
                p[j + 1] = p[j]
                j -= 1
            }
            p[j + 1] = x
        }
    }

    /// Beam search on one level during construction; leaves the beam in `ctx.results`, returns its size.
    private func searchLayer(query: UnsafePointer<Float>, entry: UInt32, entryDist: Float, level: Int,
                             ctx: InsertContext) -> Int {
        ctx.generation &+= 1
        if ctx.generation == 0 {
            ctx.visited.update(repeating: 0, count: count)
            ctx.generation = 1
        }
        let gen = ctx.generation
        let visited = ctx.visited
        var candidates = MinHeap(storage: ctx.candidates, capacity: count + 1)
        var results = MaxHeap(storage: ctx.results, capacity: ctx.resultCapacity)
        candidates.push(Neighbor(dist: entryDist, id: entry))
        results.push(Neighbor(dist: entryDist, id: entry))
        visited[Int(entry)] = gen
        var lowerBound = entryDist
        let ef = efConstruction
        let dim = dimension
        let copy = ctx.linkCopy
        while !candidates.isEmpty {
            let c = candidates.top
            if c.dist > lowerBound && results.count >= ef { break }
            candidates.pop()
            lock(c.id)
            let list = links(c.id, level)
            let n = Int(list[0])
            for j in 0...n { copy[j] = list[j] }
            unlock(c.id)
            // Gather unvisited neighbours (prefetching their first lines), then compute with the
            // whole next vector prefetched, as the query-time search does.
            var fresh = 0
            for j in 0..<n {
                let e = copy[1 + j]
                if visited[Int(e)] == gen { continue }
                visited[Int(e)] = gen
                copy[1 + fresh] = e
                fresh += 1
                tp_prefetch(vectors + Int(e) * dim)
            }
            for j in 0..<fresh {
                let e = copy[1 + j]
                if j + 1 < fresh { tp_prefetch_range(vectors + Int(copy[2 + j]) * dim, dim * 4) }
                let d = distance(query, vectors + Int(e) * dim)
                if results.count < ef || d < lowerBound {
                    candidates.push(Neighbor(dist: d, id: e))
                    if results.count < ef {
                        results.push(Neighbor(dist: d, id: e))
                    } else {
                        results.replaceTop(Neighbor(dist: d, id: e))
                    }
                    lowerBound = results.top.dist
                }
            }
        }
        return results.count
    }
}

/// A small, fast, seedable generator (SplitMix64) for deterministic builds and tests.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_B9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
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
