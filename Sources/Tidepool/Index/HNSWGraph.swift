import TidepoolKernels

/// The stored layout of an HNSW graph, shared by the builder (heap memory) and
/// the searcher (the memory-mapped segment), so a graph is searched in place.
///
///     header (64 bytes): magic "TPHNSW\0\1", u32 m, u32 m0, u32 maxLevel, u32 entryPoint,
///                        u64 nodeCount, u64 upperWords, 24 reserved bytes
///     levels:        u8 per node, padded to 64 bytes
///     upperOffsets:  u32 per node: first word of its upper-level lists (0xFFFFFFFF when level 0 only), padded
///     level0:        per node (m0 + 1) u32: count, then neighbours, padded to 64 bytes
///     upper:         per node with level L ≥ 1, L lists of (m + 1) u32 (levels 1...L)
struct HNSWLayout {
    static let magic: [UInt8] = Array("TPHNSW".utf8) + [0, 1]
    static let headerSize = 64
    static let none: UInt32 = .max

    let m: Int
    let m0: Int
    let count: Int
    let upperWords: Int

    var levelsOffset: Int { HNSWLayout.headerSize }
    var upperOffsetsOffset: Int { align64(levelsOffset + count) }
    var level0Offset: Int { align64(upperOffsetsOffset + 4 * count) }
    var upperOffset: Int { align64(level0Offset + 4 * count * (m0 + 1)) }
    var totalBytes: Int { upperOffset + 4 * upperWords }
}

@inline(__always) func align64(_ x: Int) -> Int { (x + 63) & ~63 }

/// A read-only view of a graph laid out as `HNSWLayout`, plus the search over it.
struct HNSWGraphView: @unchecked Sendable {
    let m: Int
    let m0: Int
    let maxLevel: Int
    let entryPoint: UInt32
    let count: Int
    let levels: UnsafePointer<UInt8>
    let upperOffsets: UnsafePointer<UInt32>
    let level0: UnsafePointer<UInt32>
    let upper: UnsafePointer<UInt32>
    let upperWords: Int

    /// Parses and validates a graph block. Every link is checked to be in range,
    /// so a damaged graph is an error, never an out-of-bounds read.
    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, expectedCount: Int) throws {
        var r = ByteReader(bytes, file: file, fileOffset: fileOffset)
        let magic = try r.bytes(8, "HNSW magic")
        guard Array(magic) == HNSWLayout.magic else { throw r.fail("bad HNSW block magic") }
        m = Int(try r.u32())
        m0 = Int(try r.u32())
        maxLevel = Int(try r.u32())
        entryPoint = try r.u32()
        count = try r.size("HNSW node count")
        upperWords = try r.size("HNSW upper words")
        guard m >= 1 && m <= 1024 && m0 >= m && m0 <= 2048, maxLevel <= 64 else { throw r.fail("implausible HNSW parameters m=\(m) m0=\(m0) maxLevel=\(maxLevel)") }
        guard count == expectedCount else { throw r.fail("HNSW node count \(count) differs from row count \(expectedCount)") }
        guard count == 0 || Int(entryPoint) < count else { throw r.fail("HNSW entry point \(entryPoint) out of range") }
        let layout = HNSWLayout(m: m, m0: m0, count: count, upperWords: upperWords)
        guard upperWords >= 0, layout.totalBytes <= bytes.count else { throw r.fail("HNSW block shorter than its layout (\(layout.totalBytes) > \(bytes.count))") }
        let base = bytes.baseAddress!
        levels = (base + layout.levelsOffset).assumingMemoryBound(to: UInt8.self)
        upperOffsets = (base + layout.upperOffsetsOffset).assumingMemoryBound(to: UInt32.self)
        level0 = (base + layout.level0Offset).assumingMemoryBound(to: UInt32.self)
        upper = (base + layout.upperOffset).assumingMemoryBound(to: UInt32.self)
        try validate(file: file, fileOffset: fileOffset, layout: layout)
    }

    private func validate(file: String, fileOffset: Int, layout: HNSWLayout) throws {
        let n = UInt32(count)
        for i in 0..<count {
            let lv = Int(levels[i])
            if lv > maxLevel { throw TidepoolError.corrupt(file: file, offset: fileOffset + layout.levelsOffset + i, reason: "HNSW node \(i) level \(lv) above max \(maxLevel)") }
            let l0 = level0 + i * (m0 + 1)
            if Int(l0[0]) > m0 { throw TidepoolError.corrupt(file: file, offset: fileOffset + layout.level0Offset + 4 * i * (m0 + 1), reason: "HNSW node \(i) has \(l0[0]) links, more than \(m0)") }
            for j in 0..<Int(l0[0]) where l0[1 + j] >= n {
                throw TidepoolError.corrupt(file: file, offset: fileOffset + layout.level0Offset + 4 * (i * (m0 + 1) + 1 + j), reason: "HNSW link \(l0[1 + j]) out of range")
            }
            if lv > 0 {
                let off = Int(upperOffsets[i])
                if upperOffsets[i] == HNSWLayout.none || off + lv * (m + 1) > upperWords {
                    throw TidepoolError.corrupt(file: file, offset: fileOffset + layout.upperOffsetsOffset + 4 * i, reason: "HNSW upper-level offset of node \(i) out of range")
                }
                for l in 0..<lv {
                    let list = upper + off + l * (m + 1)
                    if Int(list[0]) > m { throw TidepoolError.corrupt(file: file, offset: fileOffset + layout.upperOffset + 4 * (off + l * (m + 1)), reason: "HNSW node \(i) level \(l + 1) has \(list[0]) links") }
                    for j in 0..<Int(list[0]) where list[1 + j] >= n {
                        throw TidepoolError.corrupt(file: file, offset: fileOffset + layout.upperOffset + 4 * (off + l * (m + 1) + 1 + j), reason: "HNSW link out of range")
                    }
                }
            }
        }
        if count > 0 && Int(levels[Int(entryPoint)]) != maxLevel {
            throw TidepoolError.corrupt(file: file, offset: fileOffset, reason: "HNSW entry point is not on the top level")
        }
    }

    @inline(__always)
    func links(_ node: UInt32, level: Int) -> UnsafePointer<UInt32> {
        if level == 0 { return level0 + Int(node) * (m0 + 1) }
        return upper + Int(upperOffsets[Int(node)]) + (level - 1) * (m + 1)
    }
}

extension HNSWGraphView: HNSWLinks {
    @inline(__always)
    func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R {
        body(links(node, level: level))
    }
    @inline(__always) func level0List(_ node: UInt32) -> UnsafeRawPointer { UnsafeRawPointer(level0 + Int(node) * (m0 + 1)) }
}

/// Where a search reads link lists: a finished graph, read in place without locks, or a
/// graph still being built (the in-memory tier's), whose lists are read under each node's lock.
protocol HNSWLinks {
    var m0: Int { get }
    /// Runs `body` over `node`'s list at `level` (count, then neighbours). `body` must not read another list.
    func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R
    /// The address of `node`'s level-0 list, for prefetching only.
    func level0List(_ node: UInt32) -> UnsafeRawPointer
}

/// HNSW search over any link source (Malkov & Yashunin, algorithm 5), skipping rows `admit`
/// refuses while still routing through them; with `twoHop`, ACORN-style filtered expansion.
/// Emits up to `k` (distance, row) pairs, unsorted; returns the number of distances computed.
@inline(__always)
func hnswSearch<G: HNSWLinks, D: RowDistance, A: RowAdmission>(_ g: G, entryPoint: UInt32, maxLevel: Int, count: Int,
                                                              distance dist: D, k: Int, ef: Int, admit: A, twoHop: Bool,
                                                              scratch: SearchScratch, emit: (Float, UInt32) -> Void) -> Int {
    guard count > 0 else { return 0 }
    let ef = max(ef, k)
    let gen = scratch.begin(nodes: count, heap: ef + 1)
    let visited = scratch.visited

    var cur = entryPoint
    var curDist = dist(cur)
    var computed = 1
    if maxLevel > 0 {
        let copy = scratch.linkBuffer
        for level in stride(from: maxLevel, to: 0, by: -1) {
            var changed = true
            while changed {
                changed = false
                let n = g.withLinks(cur, level: level) { list in
                    let n = Int(list[0])
                    for j in 0..<n { copy[j] = list[1 + j] }
                    return n
                }
                for j in 0..<n {
                    let cand = copy[j]
                    let d = dist(cand)
                    computed += 1
                    if d < curDist {
                        curDist = d
                        cur = cand
                        changed = true
                    }
                }
            }
        }
    }

    var candidates = MinHeap(storage: scratch.heapA, capacity: scratch.candidateCapacity)
    var results = MaxHeap(storage: scratch.heapB, capacity: scratch.heapCapacity)
    candidates.push(Neighbor(dist: curDist, id: cur))
    visited[Int(cur)] = gen
    if admit.admits(cur) { results.push(Neighbor(dist: curDist, id: cur)) }
    var lowerBound: Float = results.isEmpty ? .infinity : curDist
    let fresh = scratch.neighborBuffer
    let cap = SearchScratch.neighborBufferCapacity
    let hopList = scratch.linkBuffer

    while !candidates.isEmpty {
        let c = candidates.top
        if c.dist > lowerBound && results.count == ef { break }
        candidates.pop()
        // Gather the unvisited neighbours, prefetching the first line of each ...
        var m = 0
        if twoHop {
            // Filtered (ACORN-style): a disallowed neighbour costs no distance; its own
            // neighbours are gathered instead, so the walk stays among allowed nodes.
            let n = g.withLinks(c.id, level: 0) { list in
                let n = Int(list[0])
                for j in 0..<n { hopList[j] = list[1 + j] }
                return n
            }
            // Pull in the link lists of the disallowed neighbours first, so their misses overlap.
            for j in 0..<n {
                let e = hopList[j]
                if visited[Int(e)] != gen && !admit.allowed(e) { tp_prefetch_range(g.level0List(e), (g.m0 + 1) * 4) }
            }
            for j in 0..<n {
                let e = hopList[j]
                if visited[Int(e)] == gen { continue }
                visited[Int(e)] = gen
                if admit.allowed(e) {
                    if m < cap { fresh[m] = e; m += 1; dist.prefetch(e) }
                    continue
                }
                m = g.withLinks(e, level: 0) { hop in
                    var m = m
                    for j2 in 0..<Int(hop[0]) {
                        let e2 = hop[1 + j2]
                        if visited[Int(e2)] == gen || !admit.allowed(e2) { continue }
                        visited[Int(e2)] = gen
                        if m < cap { fresh[m] = e2; m += 1; dist.prefetch(e2) }
                    }
                    return m
                }
            }
        } else {
            m = g.withLinks(c.id, level: 0) { list in
                let n = Int(list[0])
                var m = 0
                for j in 0..<n {
                    let e = list[1 + j]
                    if visited[Int(e)] == gen { continue }
                    visited[Int(e)] = gen
                    fresh[m] = e
                    m += 1
                    dist.prefetch(e)
                }
                return m
            }
        }
        // ... then compute, pulling in the whole next vector while this one computes.
        for t in 0..<m {
            let e = fresh[t]
            if t + 1 < m { dist.prefetchAll(fresh[t + 1]) }
            let d = dist(e)
            computed += 1
            if results.count < ef || d < lowerBound {
                candidates.push(Neighbor(dist: d, id: e))
                if admit.admits(e) {
                    if results.count < ef {
                        results.push(Neighbor(dist: d, id: e))
                    } else {
                        results.replaceTop(Neighbor(dist: d, id: e))
                    }
                }
                if !results.isEmpty { lowerBound = results.top.dist }
            }
        }
    }
    while results.count > k { results.pop() }
    for i in 0..<results.count { emit(results.storage[i].dist, results.storage[i].id) }
    return computed
}

/// Distances from one query to rows of a container, by row: full-precision vectors, or
/// compressed codes. Generic parameters of the graph search, so each is specialized.
protocol RowDistance {
    func callAsFunction(_ row: UInt32) -> Float
    /// Pulls in the first cache line of a row.
    func prefetch(_ row: UInt32)
    /// Pulls in all of a row.
    func prefetchAll(_ row: UInt32)
}

/// Exact distances to f32 vectors.
struct F32RowDistance: RowDistance {
    let query: UnsafePointer<Float>
    let vectors: UnsafePointer<Float>
    let distance: DistanceFunction

    @inline(__always) func callAsFunction(_ row: UInt32) -> Float { distance(query, vectors + Int(row) * distance.dimension) }
    @inline(__always) func prefetch(_ row: UInt32) { tp_prefetch(vectors + Int(row) * distance.dimension) }
    @inline(__always) func prefetchAll(_ row: UInt32) {
        tp_prefetch_range(vectors + Int(row) * distance.dimension, distance.dimension * 4)
    }
}
