import TidepoolKernels

/// One graph walk over a container's rows `0 ..< limit`: over f32 rows (exact distances), or over
/// the segment's compressed copy (SQ8 codes or f16), whose best `rerank` candidates (default ef)
/// are re-scored with the f32 rows so reported distances are exact. Dead rows, rows a filter
/// refuses and rows at or past `limit` are walked through but never returned. A stored graph runs
/// it through `StoredGraph.visit`, so the walk is specialized per layout.
struct GraphWalk: StoredGraphVisitor {
    let query: IndexQuery
    let rows: ContainerRows
    /// What the walk reads instead of f32 rows; nil for f32.
    let codes: CompressedVectors?
    /// The container's filter bitmap and its cardinality; nil without a filter.
    let allowed: Bitmap?
    let allowedCount: Int?
    /// Rows at or past this are not returned (a memtable's graph may already link rows its
    /// snapshot does not see, or that its exact scan covers).
    let limit: Int
    let container: Int
    let scratch: SearchScratch
    /// What the walk found (keys: `RowKey` of `container`), and what it cost.
    var found: TopK
    var cost = SearchCost()

    init(
        query: IndexQuery, rows: ContainerRows, codes: CompressedVectors?, allowed: Bitmap?, allowedCount: Int?,
        limit: Int, container: Int, scratch: SearchScratch
    ) {
        self.query = query
        self.rows = rows
        self.codes = codes
        self.allowed = allowed
        self.allowedCount = allowedCount
        self.limit = limit
        self.container = container
        self.scratch = scratch
        found = TopK(k: query.k)
    }

    mutating func visit<G: StoredGraphLayout>(_ graph: G) {
        run(graph, entryPoint: graph.entryPoint, maxLevel: graph.maxLevel, nodes: graph.count)
    }

    /// Walks `graph` (a stored layout or a memtable's graph under construction) from its entry.
    mutating func run<G: HNSWLinks>(_ graph: G, entryPoint: UInt32, maxLevel: Int, nodes: Int) {
        cost.graphSearches += 1
        let walker = Walker(
            graph: graph, entryPoint: entryPoint, maxLevel: maxLevel, nodes: nodes, query: query,
            dead: rows.dead, allowed: allowed, allowedCount: allowedCount, limit: limit, scratch: scratch)
        switch codes {
        case .sq8(let sq8)?:
            let prepared = SQ8Query(query: query.vector, quantizer: sq8.quantizer, metric: query.metric, buffers: scratch.sq8)
            reranked(walker, SQ8RowDistance(query: prepared, codes: sq8.codes, kernels: tp_sq8_kernels()))
        case .f16(let f16)?:
            reranked(
                walker,
                F16RowDistance(
                    query: query.vector, halves: f16.halves, dimension: query.dimension,
                    usesDot: query.metric.usesDot, kernels: tp_f16_kernels()))
        case nil:
            let c = container
            let exact = F32RowDistance(query: query.vector, vectors: rows.vectors, distance: query.distance)
            let computed = withUnsafeMutablePointer(to: &found) { top in
                walker.search(exact, depth: query.k) { d, row in top.pointee.push(d, RowKey(container: c, row: row).packed) }
            }
            cost.distances += computed
        }
    }

    /// Candidates re-scored with f32 when the caller does not say: the walk's best 2·k (at least
    /// 20), at most ef. The 8-bit estimates rank well enough that re-scoring more found nothing
    /// more (pypi-minilm-100k and 200k × 128 synthetic: recall@10 identical at 16 and at ef, up
    /// to ef 256) and cost a random read of a full vector each (+21% QPS at ef 64 on pypi).
    static func defaultRerank(k: Int, ef: Int) -> Int { min(ef, max(2 * k, 20)) }

    /// Walks over compressed rows, then re-scores the best candidates with the f32 ones.
    private mutating func reranked<G: HNSWLinks, D: RowDistance>(_ walker: Walker<G>, _ distances: D) {
        let depth = max(query.rerank ?? Self.defaultRerank(k: query.k, ef: query.ef), query.k)
        let candidates = scratch.rerankRows.reserve(depth)
        var n = 0
        let computed = walker.search(distances, depth: depth) { _, row in
            if n < depth { candidates[n] = row; n += 1 }
        }
        cost.quantizedDistances += computed
        let dimension = query.dimension
        for i in 0..<n { tp_prefetch_range(rows.vectors + Int(candidates[i]) * dimension, dimension * 4) }
        for i in 0..<n {
            let row = candidates[i]
            found.push(query.distance(query.vector, rows.vectors + Int(row) * dimension), RowKey(container: container, row: row).packed)
        }
        cost.distances += n
    }
}

/// One `hnswSearch` call's fixed arguments, and the choice of admission: live rows below the
/// limit, and allowed by the filter when there is one; with a selective filter, two-hop expansion.
private struct Walker<G: HNSWLinks> {
    let graph: G
    let entryPoint: UInt32
    let maxLevel: Int
    let nodes: Int
    let query: IndexQuery
    let dead: DeadFilter
    let allowed: Bitmap?
    let allowedCount: Int?
    let limit: Int
    let scratch: SearchScratch

    /// Emits up to `depth` rows; returns the distances computed.
    @inline(__always) func search<D: RowDistance>(_ distances: D, depth: Int, _ emit: (Float, UInt32) -> Void) -> Int {
        let below = UInt32(limit)
        if let allowed {
            // Below this selectivity, two-hop expansion beats computing distances to disallowed
            // nodes (measured in docs/FILTERS.md).
            let twoHop = (allowedCount ?? limit) * 4 < limit
            return allowed.words.withUnsafeBufferPointer { w in
                hnswSearch(
                    graph, entryPoint: entryPoint, maxLevel: maxLevel, count: nodes, distance: distances, k: depth, ef: query.ef,
                    admit: AdmitBelow(inner: AdmitLiveAllowed(dead: dead, allowed: w.baseAddress!), limit: below),
                    twoHop: twoHop, scratch: scratch, emit: emit)
            }
        }
        return hnswSearch(
            graph, entryPoint: entryPoint, maxLevel: maxLevel, count: nodes, distance: distances, k: depth, ef: query.ef,
            admit: AdmitBelow(inner: AdmitLive(dead: dead), limit: below), twoHop: false, scratch: scratch, emit: emit)
    }
}
