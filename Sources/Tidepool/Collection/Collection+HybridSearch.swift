import Foundation

extension Collection {
    /// One query ranked by both vector distance and BM25, fused (reciprocal rank fusion by
    /// default); filters apply to both rankings, and each hit reports its component scores.
    public func hybridSearch(vector: [Float], text query: String, k: Int, options: HybridOptions = HybridOptions()) throws -> [HybridHit] {
        try hybridSearchWithCost(vector: vector, text: query, k: k, options: options).hits
    }

    /// As ``hybridSearch(vector:text:k:options:)``, and reports what both rankings cost.
    public func hybridSearchWithCost(
        vector: [Float], text query: String, k: Int,
        options: HybridOptions = HybridOptions()
    ) throws -> (hits: [HybridHit], cost: SearchCost) {
        let start = DispatchTime.now().uptimeNanoseconds
        guard let textConfig = config.text else {
            throw TidepoolError.invalidArgument("collection '\(name)' has no text index (CollectionConfig.text)")
        }
        guard (1...10_000).contains(k), (1...10_000).contains(options.candidates) else {
            throw TidepoolError.invalidArgument("k and candidates must be in 1...10000")
        }
        if case .weighted(let w) = options.fusion, !(0...1).contains(w) {
            throw TidepoolError.invalidArgument("weighted fusion needs a vector weight in 0...1")
        }
        let q = try validatedQuery(vector)
        let filter = try options.filter?.validated(against: schema, collection: name)
        let snap = try readSnapshot(asOf: options.asOf)
        let depth = max(k, options.candidates)
        var cost = SearchCost()
        let vtop = try q.vector.withUnsafeBufferPointer {
            try search(
                snap, query: $0.baseAddress!, k: depth, options: SearchOptions(ef: options.ef, filter: filter, deadline: options.deadline),
                cost: &cost)
        }.sorted()
        var textCost = SearchCost()
        let ttop = try bm25(
            snap, query: query, k: depth, config: textConfig, match: options.match, filter: filter, deadline: options.deadline,
            cost: &textCost
        )
        .sorted()
        let vectorContainers = cost.containers
        cost.add(textCost)
        cost.containers = max(vectorContainers, textCost.containers)  // both rankings read one snapshot

        struct Entry { var v: (rank: Int, dist: Float)?; var t: (rank: Int, score: Double)? }
        var entries: [UInt64: Entry] = [:]
        for (i, h) in vtop.enumerated() { entries[h.key, default: Entry()].v = (i + 1, h.dist) }
        for (i, h) in ttop.enumerated() { entries[h.key, default: Entry()].t = (i + 1, Double(-h.dist)) }

        func minMax(_ xs: [Double]) -> (Double, Double) { (xs.min() ?? 0, xs.max() ?? 0) }
        let (vmin, vmax) = minMax(vtop.map { -Double($0.dist) })
        let (tmin, tmax) = minMax(ttop.map { -Double($0.dist) })
        func norm(_ x: Double, _ lo: Double, _ hi: Double) -> Double { hi > lo ? (x - lo) / (hi - lo) : 1 }

        var fused: [(key: UInt64, score: Double, e: Entry)] = entries.map { key, e in
            let score: Double
            switch options.fusion {
            case .reciprocalRank(let rk):
                score = (e.v.map { 1 / Double(rk + $0.rank) } ?? 0) + (e.t.map { 1 / Double(rk + $0.rank) } ?? 0)
            case .weighted(let w):
                score =
                    w * (e.v.map { norm(-Double($0.dist), vmin, vmax) } ?? 0)
                    + (1 - w) * (e.t.map { norm($0.score, tmin, tmax) } ?? 0)
            }
            return (key, score, e)
        }
        fused.sort { $0.score != $1.score ? $0.score > $1.score : $0.key < $1.key }
        let hits = try fused.prefix(k).map { f in
            let key = RowKey(packed: f.key)
            let attrs = options.includeAttributes ? schema.normalized(try snap.attributes(key)) : nil
            return HybridHit(
                id: try snap.documentID(key), score: f.score, vectorRank: f.e.v?.rank,
                vectorDistance: f.e.v.map { reportedDistance($0.dist, metric: metric) },
                textRank: f.e.t?.rank, textScore: f.e.t?.score, attributes: attrs)
        }
        cost.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return (hits, cost)
    }
}
