import TidepoolKernels

/// HNSW search over any link source (Malkov & Yashunin, algorithm 5), skipping rows `admit`
/// refuses while still routing through them; with `twoHop`, ACORN-style filtered expansion.
/// Emits up to `k` (distance, row) pairs, unsorted; returns the number of distances computed.
@inline(__always)
func hnswSearch<G: HNSWLinks, D: RowDistance, A: RowAdmission>(
    _ g: G, entryPoint: UInt32, maxLevel: Int, count: Int,
    distance dist: D, k: Int, ef: Int, admit: A, twoHop: Bool,
    scratch: SearchScratch, emit: (Float, UInt32) -> Void
) -> Int {
    guard count > 0 else { return 0 }
    let ef = max(ef, k)
    var computed = 0
    let width = SearchScratch.upperBeamWidth(ef: ef)
    let seeds = scratch.upperSeeds.reserve(max(width, 1))
    let seedCount = hnswDescend(
        g, entryPoint: entryPoint, maxLevel: maxLevel, count: count, distance: dist, width: width,
        scratch: scratch, seeds: seeds, computed: &computed)

    let gen = scratch.begin(nodes: count, heap: ef + 1)
    let visited = scratch.visited
    var candidates = MinHeap(storage: scratch.heapA, capacity: scratch.candidateCapacity)
    var results = MaxHeap(storage: scratch.heapB, capacity: scratch.heapCapacity)
    // Every seed starts the walk (at most ef of them: `upperBeamWidth` is never above ef).
    for i in 0..<seedCount {
        let s = seeds[i]
        if visited[Int(s.id)] == gen { continue }
        visited[Int(s.id)] = gen
        candidates.push(s)
        if admit.admits(s.id) { results.push(s) }
    }
    var lowerBound: Float = results.isEmpty ? .infinity : results.top.dist
    let fresh = scratch.neighborBuffer
    let cap = SearchScratch.neighborBufferCapacity
    let hopList = scratch.linkBuffer

    while !candidates.isEmpty {
        let c = candidates.top
        if c.dist > lowerBound && results.count == ef { break }
        candidates.pop()
        // The next candidate's list is likely the next one read: pull it in while this one is
        // expanded (its offset was prefetched when it was queued).
        if !candidates.isEmpty { g.prefetchLevel0(candidates.top.id) }
        // Gather the unvisited neighbours, prefetching the first line of each ...
        var m = 0
        if twoHop {
            // Filtered (ACORN-style): a disallowed neighbour costs no distance; its own
            // neighbours are gathered instead, so the walk stays among allowed nodes.
            let n = g.withLevel0(c.id) { list in
                for j in 0..<list.count { hopList[j] = list[j] }
                return list.count
            }
            // Pull in the link lists of the disallowed neighbours first, so their misses overlap.
            for j in 0..<n {
                let e = hopList[j]
                if visited[Int(e)] != gen && !admit.allowed(e) { g.prefetchLevel0(e) }
            }
            for j in 0..<n {
                let e = hopList[j]
                if visited[Int(e)] == gen { continue }
                visited[Int(e)] = gen
                if admit.allowed(e) {
                    if m < cap { fresh[m] = e; m += 1; dist.prefetch(e) }
                    continue
                }
                m = g.withLevel0(e) { hop in
                    var m = m
                    for j2 in 0..<hop.count {
                        let e2 = hop[j2]
                        if visited[Int(e2)] == gen || !admit.allowed(e2) { continue }
                        visited[Int(e2)] = gen
                        if m < cap { fresh[m] = e2; m += 1; dist.prefetch(e2) }
                    }
                    return m
                }
            }
        } else {
            m = g.withLevel0(c.id) { list in
                var m = 0
                for j in 0..<list.count {
                    let e = list[j]
                    if visited[Int(e)] == gen { continue }
                    visited[Int(e)] = gen
                    fresh[m] = e
                    m += 1
                    dist.prefetch(e)
                }
                return m
            }
        }
        // ... then compute, pulling in whole vectors 8 ahead of the one computed: a distance takes
        // less time than a row's trip from memory, and one row ahead left the kernel waiting on
        // its first load (perf: two thirds of the SQ8 kernel's time). 1, 2, 3, 5, 8 ahead measured
        // on pypi-minilm-100k, SQ8 at ef 64: 10,400, 11,700, 12,500, 13,500, 14,100 QPS; f32 +6%.
        for t in 0..<min(m, 8) { dist.prefetchAll(fresh[t]) }
        for t in 0..<m {
            let e = fresh[t]
            if t + 8 < m { dist.prefetchAll(fresh[t + 8]) }
            let d = dist(e)
            computed += 1
            if results.count < ef || d < lowerBound {
                candidates.push(Neighbor(dist: d, id: e))
                g.prefetchLevel0Index(e)
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
