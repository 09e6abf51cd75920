import Foundation
import TidepoolKernels

/// Inserting one node: the descent, the beam search per level, the heuristic neighbour
/// selection and the back links (pruned when a list is full).
extension HNSWBuilder {
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

    func insert(_ q: UInt32, _ ctx: InsertContext) {
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
    private func selectNeighbors(
        _ sorted: UnsafeMutablePointer<Neighbor>, _ n: Int, limit: Int,
        selected: UnsafeMutablePointer<Neighbor>
    ) -> Int {
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
    private func searchLayer(
        query: UnsafePointer<Float>, entry: UInt32, entryDist: Float, level: Int,
        ctx: InsertContext
    ) -> Int {
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
