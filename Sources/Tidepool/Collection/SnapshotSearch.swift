import Foundation

/// One vector search of a snapshot: the plan's units run on one thread or spread over several,
/// each unit's results merged into one top-k. Keys of the result are `RowKey`s of the snapshot.
/// `@unchecked Sendable`: the threads of one search only read it (the snapshot and the query
/// vector outlive the call).
struct SnapshotSearch: @unchecked Sendable {
    let snapshot: Snapshot
    let query: IndexQuery
    /// Per container, the rows the filter allows and how many; nil without a filter.
    let allowed: [Bitmap]?
    let allowedCounts: [Int]?
    let ivfParameters: IVFParameters
    let maxThreads: Int
    let exact: Bool
    let deadline: Deadline?

    func run(cost: inout SearchCost) throws -> TopK {
        let plan = SearchPlan(snapshot: snapshot, exact: exact, ef: query.ef, allowedCounts: allowedCounts)
        let units = plan.units
        cost.containers += plan.containerCount
        let threads = min(maxThreads, plan.scannedRows >= 65_536 ? ProcessInfo.processInfo.activeProcessorCount : 1, units.count)
        if threads <= 1 {
            var top = TopK(k: query.k)
            try ScratchPool.shared.withScratch { scratch in
                for u in units where deadline?.hasPassed != true { try run(u, into: &top, cost: &cost, scratch: scratch) }
            }
            try deadline.check("searching collection containers")
            return top
        }
        let partials = Locked<[(TopK, SearchCost)]>([])
        let failure = Locked<(any Error)?>(nil)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var top = TopK(k: query.k)
            var partCost = SearchCost()
            do {
                try ScratchPool.shared.withScratch { scratch in
                    for i in stride(from: t, to: units.count, by: threads) where deadline?.hasPassed != true {
                        try run(units[i], into: &top, cost: &partCost, scratch: scratch)
                    }
                }
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
            partials.withLock { $0.append((top, partCost)) }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        try deadline.check("searching collection containers")
        var merged = TopK(k: query.k)
        for (p, c) in partials.withLock({ $0 }) {
            for it in p.items { merged.push(it.dist, it.key) }
            cost.add(c)
        }
        return merged
    }

    /// Runs one unit, pushing into `top`. A segment whose f32 rows are still arriving is waited
    /// for, unless the unit is an IVF search that fetches only its re-rank candidates' rows.
    func run(_ u: SearchPlan.Unit, into top: inout TopK, cost: inout SearchCost, scratch: SearchScratch) throws {
        let rows = snapshot.rows(u.container)
        let container = snapshot.containers[u.container]
        var fetchRows: ((UnsafeBufferPointer<Neighbor>) throws -> Void)?
        var fetchLists: (([Int]) throws -> Void)?
        if case .segment(let s) = container, !s.vectorsArrived {
            if u.kind == .ivf && s.rerankFetchesRows {
                fetchRows = { try s.ensureRows($0.lazy.map(\.id)) }
                if s.listsFetchCodes { fetchLists = { try s.ensureLists($0) } }
            } else {
                try s.awaitVectors(deadline: deadline)
            }
        } else if case .segment(let s) = container, s.tier == .cold, u.kind == .ivf {
            fetchRows = { s.requestRows($0) }
        }
        switch (u.kind, container) {
        case (.graph, .segment(let s)):
            guard let graph = s.graph else { break }
            var walk = makeWalk(u, rows, codes: s.codes, scratch: scratch)
            graph.visit(&walk)
            try finish(walk.found, walk.cost, u, rows, into: &top, cost: &cost, scratch: scratch)
            return
        case (.graph, .memtable(let m, _, _)):
            guard let graph = m.graph else { break }
            // The graph is still growing: rows at or past the unit's end may be linked already,
            // and are walked through but never returned (the scan covers them).
            var walk = makeWalk(u, rows, codes: nil, scratch: scratch)
            let (entryPoint, maxLevel) = graph.entry()
            walk.run(graph, entryPoint: entryPoint, maxLevel: maxLevel, nodes: graph.count)
            try finish(walk.found, walk.cost, u, rows, into: &top, cost: &cost, scratch: scratch)
            return
        case (.ivf, .segment(let s)):
            guard let ivf = s.ivf else { break }
            let nprobe = min(ivf.nlist, query.nprobe ?? ivfParameters.probes(nlist: ivf.nlist))
            let rerankDefault = s.tier == .cold ? IVFRerankDepth.cold : IVFRerankDepth.warm
            var found = TopK(k: query.k)
            if let allowed {
                try allowed[u.container].words.withUnsafeBufferPointer { w in
                    try IVFSearch(
                        ivf: ivf, query: query, nprobe: nprobe, rows: rows,
                        admission: AdmitLiveAllowed(dead: rows.dead, allowed: w.baseAddress!), container: u.container,
                        fetchRows: fetchRows, fetchLists: fetchLists, defaultRerank: rerankDefault,
                        readsInRounds: s.tier == .cold
                    )
                    .run(into: &found, cost: &cost, scratch: scratch)
                }
            } else {
                try IVFSearch(
                    ivf: ivf, query: query, nprobe: nprobe, rows: rows, admission: AdmitLive(dead: rows.dead), container: u.container,
                    fetchRows: fetchRows, fetchLists: fetchLists, defaultRerank: rerankDefault,
                    readsInRounds: s.tier == .cold
                )
                .run(into: &found, cost: &cost, scratch: scratch)
            }
            try finish(found, SearchCost(), u, rows, into: &top, cost: &cost, scratch: scratch)
            return
        default:
            break
        }
        cost.rowsScanned += u.rows.count
        if u.kind == .scanAllowed, let allowed {
            cost.distances += allowed[u.container].count(in: u.rows)
            rows.scan(query, allowed: allowed[u.container], rows: u.rows, container: u.container, into: &top)
        } else {
            cost.distances += u.rows.count
            rows.scan(query, rows: u.rows, container: u.container, into: &top, scratch: scratch)
        }
    }

    private func makeWalk(_ u: SearchPlan.Unit, _ rows: ContainerRows, codes: CompressedVectors?, scratch: SearchScratch) -> GraphWalk {
        GraphWalk(
            query: query, rows: rows, codes: codes, allowed: allowed?[u.container], allowedCount: allowedCounts?[u.container],
            limit: u.rows.upperBound, container: u.container, scratch: scratch)
    }

    /// Moves an index search's results into `top`, or, when the index found fewer than k of the
    /// container's admissible rows (a filter or deletions cut the graph or the probed lists off),
    /// scans them all instead.
    private func finish(
        _ found: TopK, _ indexCost: SearchCost, _ u: SearchPlan.Unit, _ rows: ContainerRows,
        into top: inout TopK, cost: inout SearchCost, scratch: SearchScratch
    ) throws {
        cost.add(indexCost)
        let end = u.rows.upperBound
        let admissible = allowedCounts?[u.container] ?? end
        guard found.items.count < query.k && admissible > found.items.count else {
            for it in found.items { top.push(it.dist, it.key) }
            return
        }
        if case .segment(let s) = snapshot.containers[u.container] { try s.awaitVectors(deadline: deadline) }
        cost.rowsScanned += end
        cost.distances += admissible
        if let allowed {
            rows.scan(query, allowed: allowed[u.container], rows: 0..<end, container: u.container, into: &top)
        } else {
            rows.scan(query, rows: 0..<end, container: u.container, into: &top, scratch: scratch)
        }
    }
}
