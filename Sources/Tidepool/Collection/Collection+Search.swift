import Foundation

extension Collection {
    /// The `k` nearest live documents to `vector`, closest first.
    ///
    /// Uses each segment's index (an HNSW graph with beam width `options.ef`, default the
    /// collection's `efSearch`, or IVF lists), and scans small segments and the in-memory tier
    /// exactly; `options.exact` scans everything.
    public func search(vector: [Float], k: Int, options: SearchOptions = SearchOptions()) throws -> [SearchHit] {
        try searchWithCost(vector: vector, k: k, options: options).hits
    }

    /// As ``search(vector:k:options:)``, and reports what the search cost (containers searched,
    /// graph walks, rows scanned, distances computed, time).
    public func searchWithCost(vector: [Float], k: Int, options: SearchOptions = SearchOptions()) throws -> SearchResults {
        let start = DispatchTime.now().uptimeNanoseconds
        let options = try validated(options, k: k)
        let q = try validatedQuery(vector)
        let snap = try readSnapshot(asOf: options.asOf)
        var cost = SearchCost()
        let top = try q.vector.withUnsafeBufferPointer { qp in
            try search(snap, query: qp.baseAddress!, k: k, options: options, cost: &cost)
        }
        let hits = try resolve(top, in: snap, options: options)
        cost.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return SearchResults(hits: hits, cost: cost)
    }

    /// Checks a search's k and knobs, and validates its filter against the schema.
    func validated(_ options: SearchOptions, k: Int) throws -> SearchOptions {
        guard k >= 1 && k <= 10_000 else { throw TidepoolError.invalidArgument("k must be in 1...10000, got \(k)") }
        if let ef = options.ef, ef < 1 || ef > 100_000 {
            throw TidepoolError.invalidArgument("ef must be in 1...100000, got \(ef)")
        }
        if let r = options.rerank, r < 1 || r > 100_000 {
            throw TidepoolError.invalidArgument("rerank must be in 1...100000, got \(r)")
        }
        if let p = options.nprobe, p < 1 || p > 1 << 20 {
            throw TidepoolError.invalidArgument("nprobe must be in 1...1048576, got \(p)")
        }
        var options = options
        options.filter = try options.filter?.validated(against: schema, collection: name)
        return options
    }

    /// Searches a snapshot with a prepared query (validated, normalized for cosine) and a
    /// validated filter. Keys of the result are `RowKey`s of `snap`.
    func search(_ snap: Snapshot, query: UnsafePointer<Float>, k: Int, options: SearchOptions, cost: inout SearchCost) throws -> TopK {
        let settings = config
        let allowed = try snap.vectorSearchRows(options.filter, deadline: options.deadline)
        let q = IndexQuery(
            vector: query, k: k, ef: max(options.ef ?? settings.hnsw.efSearch, k), rerank: options.rerank,
            nprobe: options.nprobe, distance: distance, metric: metric)
        return try SnapshotSearch(
            snapshot: snap, query: q, allowed: allowed, allowedCounts: allowed?.map(\.cardinality),
            ivfParameters: settings.ivf, maxThreads: options.maxThreads, exact: options.exact, deadline: options.deadline
        ).run(cost: &cost)
    }

    /// The hits for a search's keys, closest first, with what `options` asks to include.
    func resolve(_ top: TopK, in snap: Snapshot, options: SearchOptions) throws -> [SearchHit] {
        let schema = self.schema
        return try top.sorted().map { item in
            let key = RowKey(packed: item.key)
            return SearchHit(
                id: try snap.documentID(key), distance: reportedDistance(item.dist, metric: metric),
                attributes: options.includeAttributes ? schema.normalized(try snap.attributes(key)) : nil,
                vector: options.includeVectors ? try snap.vector(key) : nil)
        }
    }

    /// Checks a query vector (dimension, finite values) and normalizes it for cosine.
    func validatedQuery(_ vector: [Float]) throws -> Document {
        guard vector.count == dimension else {
            throw TidepoolError.dimensionMismatch(collection: name, expected: dimension, got: vector.count)
        }
        var q = Document(id: .uint(0), vector: vector)
        try VectorCheck.prepare(&q.vector, metric: metric, what: "collection '\(name)': query vector")
        return q
    }
}
