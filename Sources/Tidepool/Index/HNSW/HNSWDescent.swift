/// Finding where a query's walk on level 0 starts: the descent through the upper levels.
///
/// The paper descends greedily (a beam of one) to a single entry on level 0. On clustered data
/// that entry is often in the wrong cluster, and a level-0 walk seldom leaves the cluster it
/// starts in: on 1,000,000 × 128 synthetic vectors (100 clusters, M 32, SQ8, ef 64), 43 of
/// 1,000 queries found none of their 10 neighbours (recall 0.951), while the same walk started
/// from the exact nearest node found nearly all (0.991). So the descent keeps a beam on every
/// upper level, and every node the level-1 beam ends with seeds level 0.
extension SearchScratch {
    /// The level-1 beam for a level-0 beam of `ef`: half of it, at least 8, at most 64 (and
    /// never above ef, so the seeds fit the result heap). On the 1M set, widths 1 (greedy), 8
    /// and ef/2 reach recall 0.95 at 16,600, 25,100 and 26,800 QPS; ef/2 reaches 0.99 by ef 56,
    /// a fixed 8 never (0.987 by ef 128). On pypi-minilm-100k it costs 10-15% at equal ef.
    @inline(__always) static func upperBeamWidth(ef: Int) -> Int { min(max(ef / 2, 8), 64, ef) }

    /// The beam on levels ≥ 2. Eight took the 1M set's recall at ef 40 from 0.983 (greedy) to
    /// 0.989 and 0.99 from 13,800 to 15,900 QPS; as wide as level 1's it found little more (0.990 at ef 40), and on
    /// pypi-minilm-100k (a few hundred nodes on level 2 at M 16) it cost 13% of QPS.
    static let upperBeamWidthAbove = 8
}

/// Descends from `entryPoint` on `maxLevel` to level 1 with a beam on each level (`width` wide on
/// level 1, `upperWidth` above; a beam of one is the paper's greedy walk), every node a level's
/// beam ends with seeding the next level's, and leaves the best nodes found on level 1 (at most
/// `width`, unordered) in `seeds`; returns how many, and adds the distances computed to `computed`.
/// Each level's beam marks visits with its own generation, so level 0 starts unvisited.
@inline(__always)
func hnswDescend<G: HNSWLinks, D: RowDistance>(
    _ g: G, entryPoint: UInt32, maxLevel: Int, count: Int, distance dist: D, width: Int,
    scratch: SearchScratch, seeds: UnsafeMutablePointer<Neighbor>, computed: inout Int
) -> Int {
    seeds[0] = Neighbor(dist: dist(entryPoint), id: entryPoint)
    computed += 1
    var seedCount = 1
    let fresh = scratch.neighborBuffer
    var level = maxLevel
    while level >= 1 {
        let w = level == 1 ? width : min(width, SearchScratch.upperBeamWidthAbove)
        let gen = scratch.begin(nodes: count, heap: w + seedCount + 1)
        let visited = scratch.visited
        var candidates = MinHeap(storage: scratch.heapA, capacity: scratch.candidateCapacity)
        var beam = MaxHeap(storage: scratch.heapB, capacity: scratch.heapCapacity)
        for i in 0..<seedCount {
            let s = seeds[i]
            visited[Int(s.id)] = gen
            candidates.push(s)
            if beam.count < w {
                beam.push(s)
            } else if s.dist < beam.top.dist {
                beam.replaceTop(s)
            }
        }
        while !candidates.isEmpty {
            let c = candidates.top
            if c.dist > beam.top.dist && beam.count == w { break }
            candidates.pop()
            // As on level 0: gather the unvisited, then compute with whole rows prefetched 8 ahead.
            let m = g.withLinks(c.id, level: level) { list in
                var m = 0
                for j in 0..<Int(list[0]) {
                    let e = list[1 + j]
                    if visited[Int(e)] == gen { continue }
                    visited[Int(e)] = gen
                    fresh[m] = e
                    m += 1
                }
                return m
            }
            for t in 0..<min(m, 8) { dist.prefetchAll(fresh[t]) }
            for t in 0..<m {
                let e = fresh[t]
                if t + 8 < m { dist.prefetchAll(fresh[t + 8]) }
                let d = dist(e)
                computed += 1
                if beam.count < w {
                    beam.push(Neighbor(dist: d, id: e))
                    candidates.push(Neighbor(dist: d, id: e))
                } else if d < beam.top.dist {
                    beam.replaceTop(Neighbor(dist: d, id: e))
                    candidates.push(Neighbor(dist: d, id: e))
                }
            }
        }
        seedCount = beam.count
        for i in 0..<seedCount { seeds[i] = beam.storage[i] }
        level -= 1
    }
    return seedCount
}
