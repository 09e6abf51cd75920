import Foundation
import TidepoolKernels

/// Exact top-k of many queries over a snapshot in one pass over its rows: each container's rows
/// go through the blocked matrix-product kernel (`tp_exact`, in the C target), which keeps every
/// query's k best as it goes. Queries are split between threads, each with its own packed panels
/// and heaps; the per-row terms (squared norms for L2, +inf for rows dead, invisible or filtered
/// out) are computed once per container and shared. `@unchecked Sendable`: the threads only read
/// it (the snapshot and the queries outlive the call).
struct BatchExactScan: @unchecked Sendable {
    let snapshot: Snapshot
    let metric: Metric
    let dimension: Int
    let k: Int
    /// Per container, the rows a filter allows; nil without a filter.
    let allowed: [Bitmap]?
    let deadline: Deadline?
    var kernels: UnsafePointer<tp_exact_table> = tp_exact_kernels()

    /// Rows per kernel call: the deadline is checked between calls.
    static let rowsPerCall = 32_768

    /// The k best keys (`RowKey`s of the snapshot) per query, with the engine's internal distances.
    /// `queries` holds `count` prepared vectors (normalized for cosine), row-major.
    func run(queries: UnsafePointer<Float>, count: Int, threads: Int) throws -> [TopK] {
        let rowTerms = try snapshot.containers.indices.map { try rowBias($0) }
        // At least 48 queries a thread (one AVX-512 tile's width), so a small batch stays on one.
        let threads = max(1, min(threads, (count + 47) / 48))
        let chunk = (count + threads - 1) / threads
        let results = Locked([[TopK]](repeating: [], count: threads))
        let failure = Locked<(any Error)?>(nil)
        // The threads only read the queries, which outlive the call.
        nonisolated(unsafe) let queries = queries
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = t * chunk, hi = min(count, lo + chunk)
            guard lo < hi else { return }
            do {
                let tops = try scan(queries + lo * dimension, count: hi - lo, rowTerms: rowTerms)
                results.withLock { $0[t] = tops }
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return results.withLock { $0.flatMap { $0 } }
    }

    /// Scans every container for `count` queries on the calling thread.
    private func scan(_ queries: UnsafePointer<Float>, count nq: Int, rowTerms: [[Float]]) throws -> [TopK] {
        let dim = dimension
        var panels = [Float](repeating: 0, count: tp_panel_floats(nq, dim))
        tp_pack_panels(queries, nq, dim, &panels)
        var dist = [Float](repeating: 0, count: nq * k)
        var keys = [UInt64](repeating: 0, count: nq * k)
        var filled = [UInt32](repeating: 0, count: nq)
        var threshold = (0..<tp_panel_floats(nq, 1)).map { $0 < nq ? Float.infinity : -Float.infinity }
        let alpha: Float = metric.usesDot ? -1 : -2
        let scanRows = kernels.pointee.scan
        try dist.withUnsafeMutableBufferPointer { d in
            try keys.withUnsafeMutableBufferPointer { kp in
                try filled.withUnsafeMutableBufferPointer { f in
                    try threshold.withUnsafeMutableBufferPointer { th in
                        var heaps = tp_topk_heaps(
                            dist: d.baseAddress!, keys: kp.baseAddress!, count: f.baseAddress!, threshold: th.baseAddress!, k: k)
                        for c in snapshot.containers.indices {
                            let vectors = snapshot.rows(c).vectors
                            let n = rowTerms[c].count
                            try rowTerms[c].withUnsafeBufferPointer { bias in
                                var a = 0
                                while a < n {
                                    try deadline.check("an exact batch search")
                                    let m = min(Self.rowsPerCall, n - a)
                                    scanRows(
                                        vectors + a * dim, m, dim, bias.baseAddress! + a, panels, nq, alpha,
                                        RowKey(container: c, row: UInt32(a)).packed, &heaps)
                                    a += m
                                }
                            }
                        }
                    }
                }
            }
        }
        return (0..<nq).map { j in
            // L2 scores lack the query's squared norm, which ranks nothing but the distance needs.
            let qq = metric.usesDot ? 0 : (0..<dim).reduce(Float(0)) { $0 + queries[j * dim + $1] * queries[j * dim + $1] }
            var top = TopK(k: k)
            for i in 0..<Int(filled[j]) { top.push(dist[j * k + i] + qq, keys[j * k + i]) }
            return top
        }
    }

    /// Container `c`'s per-row terms: +inf for rows dead, not yet visible or filtered out; else
    /// the squared norm (L2) or 0.
    private func rowBias(_ c: Int) throws -> [Float] {
        try deadline.check("an exact batch search")
        let container = snapshot.containers[c]
        if case .segment(let s) = container, !s.vectorsArrived { try s.awaitVectors(deadline: deadline) }
        let rows = snapshot.rows(c)
        let n = container.rowCount
        let dim = dimension
        let dot = tp_f32_kernels().pointee.dot
        let allowed = allowed?[c]
        return (0..<n).map { r in
            if rows.dead.isDead(UInt32(r)) || !rows.isVisible(r) { return .infinity }
            if let allowed, !allowed.contains(r) { return .infinity }
            if metric.usesDot { return 0 }
            let v = rows.vectors + r * dim
            return dot(v, v, dim)
        }
    }
}
