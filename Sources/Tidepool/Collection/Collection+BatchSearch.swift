import Foundation

extension Collection {
    /// The `k` nearest live documents to each of `vectors`, closest first: one result per vector,
    /// in the order given.
    ///
    /// With `options.exact`, the whole batch is one pass over the collection's rows through a
    /// blocked matrix-product kernel that keeps each query's k best as it goes, on up to
    /// `options.maxThreads` threads (the queries split between them): the fast way to compute
    /// ground truth, re-rank, or search a small collection exactly. Distances then come from
    /// `|x|² − 2x·q + |q|²` for L2, so they may differ from a single exact search's in the last
    /// bits. Without `exact`, each vector is searched as ``searchWithCost(vector:k:options:)`` does.
    public func search(vectors: [[Float]], k: Int, options: SearchOptions = SearchOptions()) throws -> BatchSearchResults {
        guard options.exact, !vectors.isEmpty else {
            var out = BatchSearchResults(hits: [], cost: SearchCost())
            for v in vectors {
                try options.deadline.check("a batch search")
                let r = try searchWithCost(vector: v, k: k, options: options)
                out.hits.append(r.hits)
                out.cost.add(r.cost)
            }
            return out
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let options = try validated(options, k: k)
        var packed = [Float]()
        packed.reserveCapacity(vectors.count * dimension)
        for v in vectors { packed += try validatedQuery(v).vector }
        let snap = try readSnapshot(asOf: options.asOf)
        let allowed = try snap.vectorSearchRows(options.filter, deadline: options.deadline)
        let scan = BatchExactScan(snapshot: snap, metric: metric, dimension: dimension, k: k, allowed: allowed, deadline: options.deadline)
        let tops = try packed.withUnsafeBufferPointer {
            try scan.run(queries: $0.baseAddress!, count: vectors.count, threads: options.maxThreads)
        }
        var cost = SearchCost()
        cost.containers = snap.containers.count
        cost.rowsScanned = snap.containers.reduce(0) { $0 + $1.rowCount }
        cost.distances = cost.rowsScanned * vectors.count
        let hits = try tops.map { try resolve($0, in: snap, options: options) }
        cost.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return BatchSearchResults(hits: hits, cost: cost)
    }
}
