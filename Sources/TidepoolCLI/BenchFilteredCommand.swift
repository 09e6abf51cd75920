import ArgumentParser
import Foundation
import Tidepool

/// Filtered vector search on real data: recall against the exact filtered top-k and QPS at
/// several selectivities, next to unfiltered QPS and the exact filtered scan.
struct BenchFilteredCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filtered",
        abstract: "Filtered search at 50%, 10%, 1% and 0.1% selectivity (pypi-minilm-100k's docs.tsv attributes).",
        discussion: """
            Imports the base with the attributes of docs.tsv (name, month, rank, summary) into one segment, then for each \
            filter measures recall@k against the exact filtered top-k, single-thread QPS one query per call, p50/p99, and \
            the QPS of the exact filtered scan; and the unfiltered QPS at the same ef.
            """)

    @Option(help: "Base vectors.") var base: String
    @Option(help: "Query vectors.") var query: String
    @Option(help: "docs.tsv: id, name, month, rank, summary per line.") var docs: String
    @Option(help: "Neighbours per query.") var k: Int = 10
    @Option(help: "HNSW beam width (default: the collection's).") var ef: Int?
    @Option(help: "Use only the first N queries.") var maxQueries: Int = 1000
    @Option(help: "Repeat each measurement this many times; keep the fastest.") var rounds: Int = 2
    @Option(help: "Threads for the index build.") var threads: Int = 2
    @Option(help: "Write the report here.") var json: String?
    @Option(help: "Directory for the temporary database.") var workDir: String?

    func run() throws {
        try runReportingErrors { try measure() }
    }

    /// The benchmark's filters: month ranges and rank buckets, with their intended selectivity.
    static let cases: [(name: String, json: String)] = [
        ("month>=2025-04 (~50%)", #"{"month": {"gte": "2025-04"}}"#),
        ("month<2018-06 (~10%)", #"{"month": {"lt": "2018-06"}}"#),
        ("rank<=8475 (~1%)", #"{"rank": {"lte": 8475}}"#),
        ("rank<=1127 (~0.1%)", #"{"rank": {"lte": 1127}}"#),
    ]

    static func readDocs(_ path: String, rows: Int) throws -> [[String: AttributeValue]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TidepoolError.io(path: path, operation: "read", errno: ENOENT)
        }
        var out = [[String: AttributeValue]](repeating: [:], count: rows)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let f = line.split(separator: "\t", maxSplits: 4, omittingEmptySubsequences: false)
            guard f.count == 5, let id = Int(f[0]), id < rows else { continue }
            var a: [String: AttributeValue] = ["name": .string(String(f[1])), "summary": .string(String(f[4]))]
            if !f[2].isEmpty { a["month"] = .string(String(f[2])) }
            if let r = Int64(f[3]) { a["rank"] = .int(r) }
            out[id] = a
        }
        return out
    }

    private func measure() throws {
        let baseM = try VectorFile.readVectors(base)
        let queries = try VectorFile.readVectors(query).prefix(maxQueries)
        let attrs = try BenchFilteredCommand.readDocs(docs, rows: baseM.rows)
        let n = baseM.rows, dim = baseM.dimension
        let dir = (workDir ?? NSTemporaryDirectory()) + "/tidepool-bench-filtered-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir, options: DatabaseOptions(syncPolicy: .batched, buildThreads: threads))
        defer { try? db.close() }
        let coll = try db.createCollection(
            "bench", dimension: dim, metric: .cosine,
            config: CollectionConfig(memtableBytes: max(64 << 20, (n + 1) * dim * 4)))
        var i = 0
        while i < n {
            let end = min(i + 1000, n)
            try coll.upsert((i..<end).map { Document(id: .uint(UInt64($0)), vector: baseM.row($0), attributes: attrs[$0]) })
            i = end
        }
        try coll.flush()
        let qrows = (0..<queries.rows).map { queries.row($0) }
        // The segment's attribute index is built on its first filtered query: time that once.
        let tIndex = monotonicSeconds()
        _ = try coll.count(filter: try Filter(json: #"{"rank": {"gte": 0}}"#))
        let indexBuildMS = (monotonicSeconds() - tIndex) * 1000
        note(String(format: "first filtered query (builds the segment's attribute index): %.1f ms", indexBuildMS))

        let plain = try timedQueries(qrows) { try coll.search(vector: $0, k: k, options: SearchOptions(ef: ef, maxThreads: 1)) }
        note(String(format: "unfiltered: qps=%.0f p50=%.1fus", plain.qps, plain.p50))
        var results: [[String: Any]] = []
        for c in BenchFilteredCommand.cases {
            let filter = try Filter(json: c.json)
            let matching = try coll.count(filter: filter)
            let exact = try timedQueries(qrows) {
                try coll.search(vector: $0, k: k, options: SearchOptions(exact: true, maxThreads: 1, filter: filter))
            }
            let fast = try timedQueries(qrows) {
                try coll.search(vector: $0, k: k, options: SearchOptions(ef: ef, maxThreads: 1, filter: filter))
            }
            var hits = 0, total = 0
            for (a, b) in zip(fast.answers, exact.answers) {
                let truth = Set(b)
                hits += a.filter { truth.contains($0) }.count
                total += b.count
            }
            let recall = total == 0 ? 1 : Double(hits) / Double(total)
            let bar = max(plain.qps / 2, exact.qps)
            // Facet counts of an attribute under the same filter (the median of 21 runs).
            var facetMS: [Double] = []
            for _ in 0..<21 {
                let t0 = monotonicSeconds()
                _ = try coll.facets("month", filter: filter, limit: 10)
                facetMS.append((monotonicSeconds() - t0) * 1000)
            }
            let facetMedian = facetMS.sorted()[facetMS.count / 2]
            note(
                String(
                    format:
                        "%@: selectivity %.4f recall=%.4f qps=%.0f p50=%.1fus p99=%.1fus exact-filtered qps=%.0f (%.2fx unfiltered, %.2fx exact scan), month facets %.2f ms",
                    c.name, Double(matching) / Double(n), recall, fast.qps, fast.p50, fast.p99, exact.qps,
                    fast.qps / plain.qps, fast.qps / exact.qps, facetMedian))
            results.append([
                "name": c.name, "filter": c.json, "matching": matching, "selectivity": round5(Double(matching) / Double(n)),
                "recall": round5(recall), "qps": round1(fast.qps), "p50_us": round1(fast.p50), "p99_us": round1(fast.p99),
                "exact_filtered_qps": round1(exact.qps), "unfiltered_qps": round1(plain.qps),
                "ratio_to_unfiltered": round3(fast.qps / plain.qps), "ratio_to_exact_filtered": round3(fast.qps / exact.qps),
                "target_qps": round1(bar), "month_facets_ms": round3(facetMedian),
            ])
        }
        let report: [String: Any] = [
            "dataset": URL(fileURLWithPath: base).deletingLastPathComponent().lastPathComponent, "n": n, "dim": dim,
            "nq": qrows.count, "k": k, "ef": ef.map { $0 as Any } ?? NSNull(),
            "date": String(ISO8601DateFormatter().string(from: Date()).prefix(10)),
            "cpu": cpuModel(), "kernels": simdKernelName,
            "unfiltered": ["qps": round1(plain.qps), "p50_us": round1(plain.p50), "p99_us": round1(plain.p99)],
            "cases": results, "first_filtered_query_ms": round1(indexBuildMS),
        ]
        let text = jsonLine(report)
        if let json { try text.write(toFile: json, atomically: true, encoding: .utf8) } else { emit(text) }
    }

    /// Runs every query once as warm-up, then `fastestPass`; also returns each query's ids.
    private func timedQueries(_ qs: [[Float]], _ body: ([Float]) throws -> [SearchHit]) throws
        -> (qps: Double, p50: Double, p99: Double, answers: [[DocumentID]])
    {
        var answers = try qs.map { try body($0).map(\.id) }
        let t = try fastestPass(count: qs.count, rounds: rounds, maxPasses: 5) { answers[$0] = try body(qs[$0]).map(\.id) }
        return (t.qps, t.p50, t.p99, answers)
    }
}
