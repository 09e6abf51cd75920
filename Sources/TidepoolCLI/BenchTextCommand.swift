import ArgumentParser
import Foundation
import Tidepool

/// BM25 and hybrid queries over the summaries of pypi-minilm-100k.
struct BenchTextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "BM25 QPS for 2–3 term queries, hybrid latency, and the top-10s for a reference comparison.",
        discussion: """
            Queries are built from queries.tsv: the first 2 or 3 (alternately) distinct terms of each query's summary \
            that are not stop words. Writes the queries and Tidepool's top-10 ids and scores to --top-out as JSON lines, \
            for scripts/bm25_reference.py to compare with bm25s.
            """)

    @Option(help: "Base vectors.") var base: String
    @Option(help: "Query vectors (for hybrid).") var query: String
    @Option(help: "docs.tsv.") var docs: String
    @Option(help: "queries.tsv.") var queriesTsv: String
    @Option(help: "Number of text queries.") var count: Int = 200
    @Option(help: "Repeat timing passes this many times; keep the fastest.") var rounds: Int = 3
    @Option(help: "Write each query's terms and top-10 here (JSON lines).") var topOut: String?
    @Option(help: "Write the report here.") var json: String?
    @Option(help: "Directory for the temporary database.") var workDir: String?

    static let stop: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
        "of", "on", "or", "that", "the", "to", "with", "your", "you", "this", "python", "package",
        "library", "module", "tool", "based",
    ]

    func run() throws {
        try runReportingErrors { try measure() }
    }

    private func measure() throws {
        let baseM = try VectorFile.readVectors(base)
        let qvecs = try VectorFile.readVectors(query)
        let attrs = try BenchFilteredCommand.readDocs(docs, rows: baseM.rows)
        let analyzer = TextAnalyzer()
        var queries: [(index: Int, text: String)] = []
        let qtext = try String(contentsOfFile: queriesTsv, encoding: .utf8)
        for line in qtext.split(separator: "\n") where queries.count < count {
            let f = line.split(separator: "\t", maxSplits: 4, omittingEmptySubsequences: false)
            guard f.count == 5, let qi = Int(f[0]) else { continue }
            var terms: [String] = []
            for t in analyzer.terms(String(f[4])) where !BenchTextCommand.stop.contains(t) && !terms.contains(t) && t.count > 2 {
                terms.append(t)
                if terms.count == 2 + queries.count % 2 { break }
            }
            if terms.count >= 2 { queries.append((qi, terms.joined(separator: " "))) }
        }
        let n = baseM.rows, dim = baseM.dimension
        let dir = (workDir ?? NSTemporaryDirectory()) + "/tidepool-bench-text-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir, options: DatabaseOptions(syncPolicy: .batched))
        defer { try? db.close() }
        let coll = try db.createCollection(
            "bench", dimension: dim, metric: .cosine,
            config: CollectionConfig(
                memtableBytes: max(64 << 20, (n + 1) * dim * 4), text: TextIndexConfig(fields: ["summary"])))
        var i = 0
        while i < n {
            let end = min(i + 1000, n)
            try coll.upsert((i..<end).map { Document(id: .uint(UInt64($0)), vector: baseM.row($0), attributes: attrs[$0]) })
            i = end
        }
        let t0 = monotonicSeconds()
        try coll.flush()
        note(String(format: "flush with HNSW and text index: %.1f s", monotonicSeconds() - t0))

        func timed(_ body: (Int) throws -> Void) throws -> (qps: Double, p50: Double, p99: Double) {
            for q in queries.indices { try body(q) }  // warm-up
            return try fastestPass(count: queries.count, rounds: rounds, maxPasses: 10, body)
        }
        var tops: [[TextHit]] = Array(repeating: [], count: queries.count)
        let text = try timed { q in tops[q] = try coll.textSearch(queries[q].text, k: 10) }
        note(
            String(
                format: "BM25: %d queries, %.0f QPS single-thread, p50 %.1f us, p99 %.1f us", queries.count, text.qps, text.p50, text.p99))
        let hybrid = try timed { q in
            _ = try coll.hybridSearch(vector: qvecs.row(queries[q].index), text: queries[q].text, k: 10)
        }
        note(String(format: "hybrid (RRF, 100 candidates each): %.0f QPS, p50 %.1f us, p99 %.1f us", hybrid.qps, hybrid.p50, hybrid.p99))
        let filtered = try Filter(json: #"{"month": {"gte": "2025-04"}}"#)
        let hybridFiltered = try timed { q in
            _ = try coll.hybridSearch(
                vector: qvecs.row(queries[q].index), text: queries[q].text, k: 10, options: HybridOptions(filter: filtered))
        }
        note(
            String(
                format: "hybrid with a 50%% filter: %.0f QPS, p50 %.1f us, p99 %.1f us", hybridFiltered.qps, hybridFiltered.p50,
                hybridFiltered.p99))
        if let topOut {
            let lines = queries.indices.map { q in
                jsonLine(["query": queries[q].text, "ids": tops[q].map { jsonID($0.id) }, "scores": tops[q].map { $0.score }])
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: topOut, atomically: true, encoding: .utf8)
        }
        let report: [String: Any] = [
            "dataset": URL(fileURLWithPath: base).deletingLastPathComponent().lastPathComponent, "n": n, "queries": queries.count,
            "date": String(ISO8601DateFormatter().string(from: Date()).prefix(10)), "cpu": cpuModel(),
            "bm25": ["qps": round1(text.qps), "p50_us": round1(text.p50), "p99_us": round1(text.p99), "k1": 1.2, "b": 0.75],
            "hybrid": [
                "qps": round1(hybrid.qps), "p50_us": round1(hybrid.p50), "p99_us": round1(hybrid.p99), "fusion": "rrf-60",
                "candidates": 100,
            ],
            "hybrid_filtered_50pct": [
                "qps": round1(hybridFiltered.qps), "p50_us": round1(hybridFiltered.p50), "p99_us": round1(hybridFiltered.p99),
            ],
        ]
        let out = jsonLine(report)
        if let json { try out.write(toFile: json, atomically: true, encoding: .utf8) } else { emit(out) }
    }
}
