import Foundation
import Tidepool
import XCTest

/// A small database written by the code of 2026-12-01 (before the storage refactor) is committed
/// under `Fixtures/format-2026-12/`, with the answers that code gave. Every later version must
/// open it and answer the same: on-disk formats are a promise to users, not an implementation
/// detail. The fixture covers every section kind written today (graph layout version 3 with
/// cluster row order, SQ8 and f16 walk codes, IVF with flat, SQ8, PQ fast-scan and RaBitQ lists,
/// flat segments, text indexes, persisted tombstones, a compacted segment) and a WAL tail.
final class FormatFixtureTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/format-2026-12").path

    /// Opens a copy of the committed database (opening recovers, which may write) and checks
    /// that every recorded answer comes back, and that `verify` finds it sound.
    func testCommittedDatabaseOpensAndAnswersAsWhenItWasWritten() throws {
        let expected = try JSONDecoder().decode(
            FixtureAnswers.self,
            from: Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/answers.json")))
        let dir = TempDir()
        try? FileManager.default.removeItem(atPath: dir.path)
        try FileManager.default.copyItem(atPath: Self.fixture + "/db", toPath: dir.path)
        XCTAssertEqual(Database.verify(path: dir.path), [])
        let db = try Database(path: dir.path)
        let got = try FixtureAnswers.record(db)
        try db.close()
        XCTAssertEqual(got.collections.map(\.name), expected.collections.map(\.name))
        for (g, e) in zip(got.collections, expected.collections) {
            XCTAssertEqual(g.count, e.count, e.name)
            XCTAssertEqual(g.segments, e.segments, e.name)
            XCTAssertEqual(g.documents, e.documents, "\(e.name): get")
            XCTAssertEqual(g.scanned, e.scanned, "\(e.name): scan")
            XCTAssertEqual(g.filteredCount, e.filteredCount, "\(e.name): count(filter:)")
            XCTAssertEqual(g.searches.count, e.searches.count, e.name)
            for (gs, es) in zip(g.searches, e.searches) {
                if Self.isApproximate(es.label) && gs.ids != es.ids {
                    assertNoWorseHits(gs, es, "\(e.name): \(es.label)")
                } else {
                    assertSameHits(gs, es, "\(e.name): \(es.label)")
                }
            }
        }
    }

    /// Index searches (graph walks, IVF probes) are approximate: a better search algorithm may
    /// answer them differently from the same bytes. Exact, text, phrase and hybrid answers are pinned.
    static func isApproximate(_ label: String) -> Bool {
        !["exact", "text", "phrase", "hybrid"].contains { label.hasPrefix($0) }
    }

    /// An approximate answer that changed must be no worse: as many hits, and at every rank a
    /// distance no larger than the recorded one (within rounding).
    private func assertNoWorseHits(_ got: FixtureAnswers.Search, _ want: FixtureAnswers.Search, _ what: String) {
        XCTAssertEqual(got.ids.count, want.ids.count, what)
        for i in want.ids.indices where i < got.ids.count {
            let tolerance = 1e-4 * max(1, abs(Double(want.scores[i])))
            XCTAssertLessThanOrEqual(Double(got.scores[i]), Double(want.scores[i]) + tolerance, "\(what): rank \(i) is farther than it was")
        }
    }

    /// Same ids in the same order, distances equal within rounding (another CPU may run another
    /// kernel variant); two hits whose distances tie within rounding may trade places.
    private func assertSameHits(_ got: FixtureAnswers.Search, _ want: FixtureAnswers.Search, _ what: String) {
        XCTAssertEqual(got.ids.count, want.ids.count, what)
        guard got.ids.count == want.ids.count else { return }
        XCTAssertEqual(Set(got.ids), Set(want.ids), what)
        for i in want.ids.indices {
            let tolerance = 1e-4 * max(1, abs(Double(want.scores[i])))
            XCTAssertEqual(Double(got.scores[i]), Double(want.scores[i]), accuracy: tolerance, "\(what): score \(i)")
            if got.ids[i] != want.ids[i] {
                let tied = want.ids.indices.contains { j in
                    want.ids[j] == got.ids[i] && abs(Double(want.scores[j] - want.scores[i])) <= tolerance
                }
                XCTAssertTrue(tied, "\(what): hit \(i) is \(got.ids[i]), was \(want.ids[i])")
            }
        }
    }

    /// Writes the fixture. Run only on purpose, with the code whose formats it should pin:
    /// `TIDEPOOL_WRITE_FIXTURE=1 swift test --filter FormatFixtureTests/testWriteFixture`.
    func testWriteFixture() throws {
        guard ProcessInfo.processInfo.environment["TIDEPOOL_WRITE_FIXTURE"] != nil else {
            throw XCTSkip("writes the committed fixture; set TIDEPOOL_WRITE_FIXTURE=1 to regenerate it")
        }
        let root = Self.fixture
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        do {
            let db = try Database(path: root + "/db", options: DatabaseOptions(buildThreads: 2))
            try FixtureData.write(db)
            try db.close()
        }
        try? FileManager.default.removeItem(atPath: root + "/db/LOCK")
        let db = try Database(path: root + "/db")
        let answers = try FixtureAnswers.record(db)
        try db.close()
        try? FileManager.default.removeItem(atPath: root + "/db/LOCK")
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try enc.encode(answers).write(to: URL(fileURLWithPath: root + "/answers.json"))
    }
}

/// The fixture's contents, generated deterministically.
enum FixtureData {
    static let dimension = 16

    static func id(_ i: Int) -> DocumentID { i % 5 == 0 ? .string("doc-\(i)") : .uint(UInt64(i) * 7 + 3) }

    static func attributes(_ i: Int) -> [String: AttributeValue] {
        var a: [String: AttributeValue] = ["i": .int(Int64(i)), "group": .string("g\(i % 7)"), "score": .float(Double(i % 100) / 8)]
        if i % 3 == 0 { a["flag"] = .bool(i % 2 == 0) }
        if i % 4 == 0 { a["tags"] = .stringArray(["t\(i % 5)", "t\(i % 11)"]) }
        if i % 9 == 0 { a["none"] = .null }
        return a
    }

    static func documents(_ range: Range<Int>, seed: UInt64) -> [Document] {
        let v = clusteredVectors(range.upperBound, dimension, clusters: 24, seed: seed)
        return range.map { Document(id: id($0), vector: v[$0], attributes: attributes($0)) }
    }

    static let words = [
        "vector", "search", "swift", "database", "graph", "index", "quantized", "cosine",
        "neighbour", "segment", "memory", "disk", "fast", "exact", "recall", "query",
    ]

    static func body(_ i: Int) -> String {
        var rng = UInt64(i) &* 0x9E37_79B9_7F4A_7C15
        return (0..<(3 + i % 6)).map { _ in
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return words[Int(rng >> 60)]
        }.joined(separator: " ")
    }

    /// One collection per section kind; every one ends with a flushed part and a WAL tail
    /// (fewer than 2,048 rows, so reopening scans it exactly instead of racing the indexer).
    static func write(_ db: Database) throws {
        let graph = CollectionConfig(minRowsForGraph: 500)
        func make(_ name: String, _ metric: Metric, _ config: CollectionConfig, rows: Int, seed: UInt64) throws -> Tidepool.Collection {
            let c = try db.createCollection(name, dimension: dimension, metric: metric, config: config)
            let docs = documents(0..<rows, seed: seed)
            for start in stride(from: 0, to: rows, by: 1000) { try c.upsert(Array(docs[start..<min(rows, start + 1000)])) }
            try c.delete(ids: stride(from: 1, to: rows, by: 37).map(id))  // persisted by the flush as tombstones
            try c.flush()
            // The tail: replacements, new rows, deletions of flushed rows.
            let more = documents(0..<(rows + 150), seed: seed &+ 1)
            try c.upsert(Array(more[rows..<(rows + 150)]) + stride(from: 2, to: rows, by: 41).map { more[$0] })
            try c.delete(ids: stride(from: 3, to: rows, by: 53).map(id))
            return c
        }
        var sq8 = graph; sq8.quantization = .sq8
        _ = try make("hnsw_sq8", .l2, sq8, rows: 3000, seed: 11)
        var f16 = graph; f16.quantization = .f16
        let f = try make("hnsw_f16", .cosine, f16, rows: 2600, seed: 12)
        // A second, small flush: a flat segment beside the graph one.
        try f.upsert(documents(4000..<4300, seed: 13))
        try f.flush()
        for (name, metric, q, seed) in [
            ("ivf_flat", Metric.l2, Quantization.none, UInt64(14)), ("ivf_sq8", .innerProduct, .sq8, 15),
            ("ivf_pq", .l2, .pq, 16), ("ivf_rabitq", .cosine, .rabitq, 17),
        ] {
            _ = try make(
                name, metric,
                CollectionConfig(
                    minRowsForGraph: 500, quantization: q, index: .ivf,
                    ivf: IVFParameters(nlist: 16, pqSubspaces: 4)), rows: 2200, seed: seed)
        }
        // Three flushes merged by a compaction (graph rebuilt from cluster-ordered rows), then
        // deletions persisted by one more flush.
        let c = try db.createCollection("compacted", dimension: dimension, metric: .innerProduct, config: graph)
        let docs = documents(0..<2700, seed: 18)
        for start in stride(from: 0, to: 2700, by: 900) {
            try c.upsert(Array(docs[start..<(start + 900)]))
            try c.flush()
        }
        try c.delete(ids: stride(from: 0, to: 2700, by: 29).map(id))
        try c.compact()
        try c.delete(ids: stride(from: 5, to: 2700, by: 31).map(id))
        try c.flush()
        try c.upsert(Array(docs[10..<60]))
        // Text: a BM25 section in the flushed segment, terms in the WAL tail.
        let t = try db.createCollection(
            "text", dimension: 8, metric: .l2,
            config: CollectionConfig(
                minRowsForGraph: 1000, text: TextIndexConfig(fields: ["body"], analyzer: TextAnalyzer(stemEnglish: true))))
        let tv = clusteredVectors(600, 8, clusters: 6, seed: 19)
        func textDoc(_ i: Int) -> Document {
            var a = attributes(i)
            a["body"] = .string(body(i))
            return Document(id: id(i), vector: tv[i], attributes: a)
        }
        try t.upsert((0..<500).map(textDoc))
        try t.delete(ids: [id(7), id(8)])
        try t.flush()
        try t.upsert((500..<600).map(textDoc))
        try t.delete(ids: [id(9), id(510)])
    }
}

/// What the fixture answers: counts, storage layout, documents, scans and searches of every kind.
struct FixtureAnswers: Codable {
    struct Search: Codable {
        var label: String
        var ids: [String]
        /// Distances (vector searches) or scores (text and hybrid).
        var scores: [Float]
    }
    struct Stored: Codable, Equatable {
        var name: String
        var id: String
        var vector: [Float]
        var attributes: [String: AttributeValue]
    }
    struct CollectionAnswers: Codable {
        var name: String
        var count: Int
        /// Per segment: index kind, rows, deleted rows.
        var segments: [String]
        var documents: [Stored]
        var scanned: [String]
        var filteredCount: Int
        var searches: [Search]
    }
    var collections: [CollectionAnswers]

    static func key(_ id: DocumentID) -> String {
        switch id {
        case .uint(let v): return "u\(v)"
        case .string(let s): return "s\(s)"
        }
    }

    static func record(_ db: Database) throws -> FixtureAnswers {
        var out: [CollectionAnswers] = []
        for name in db.collectionNames {
            let c = try db.collection(name)
            let info = c.info()
            let dim = c.dimension
            let queries = clusteredVectors(6, dim, clusters: 24, seed: 99)
            let filter = Filter.and([.lt("i", .int(2000)), .or([.eq("group", .string("g3")), .exists("flag")])])
            var searches: [Search] = []
            func vector(_ label: String, _ q: [Float], _ k: Int, _ o: SearchOptions) throws {
                let hits = try c.search(vector: q, k: k, options: o)
                searches.append(Search(label: label, ids: hits.map { key($0.id) }, scores: hits.map(\.distance)))
            }
            for (i, q) in queries.enumerated() {
                try vector("default \(i)", q, 10, SearchOptions())
                try vector("exact \(i)", q, 10, SearchOptions(exact: true))
                try vector("filtered \(i)", q, 10, SearchOptions(filter: filter))
                try vector("ef 128 k 25 \(i)", q, 25, SearchOptions(ef: 128))
                try vector("nprobe 3 rerank 12 \(i)", q, 10, SearchOptions(rerank: 12, nprobe: 3))
                try vector("selective \(i)", q, 5, SearchOptions(filter: .eq("group", .string("g\(i)"))))
            }
            if c.config.text != nil {
                for (i, text) in ["vector search", "fast graph index", "quantized", "exact recall query"].enumerated() {
                    let t = try c.textSearch(text, k: 10)
                    searches.append(Search(label: "text \(i)", ids: t.map { key($0.id) }, scores: t.map { Float($0.score) }))
                    let p = try c.textSearch(text, k: 10, options: TextSearchOptions(match: .phrase))
                    searches.append(Search(label: "phrase \(i)", ids: p.map { key($0.id) }, scores: p.map { Float($0.score) }))
                    let h = try c.hybridSearch(vector: queries[i], text: text, k: 10)
                    searches.append(Search(label: "hybrid \(i)", ids: h.map { key($0.id) }, scores: h.map { Float($0.score) }))
                }
            }
            let probe = (0..<120).map { FixtureData.id($0 * 23) }
            let docs = try c.get(ids: probe).map { Stored(name: name, id: key($0.id), vector: $0.vector, attributes: $0.attributes) }
            let page = try c.scan(filter: .gte("score", .float(6)), limit: 50)
            out.append(
                CollectionAnswers(
                    name: name, count: c.count,
                    segments: info.segments.map { "\($0.index) rows \($0.rows) deleted \($0.deletedRows)" },
                    documents: docs, scanned: page.documents.map { key($0.id) },
                    filteredCount: try c.count(filter: filter), searches: searches))
        }
        return FixtureAnswers(collections: out)
    }
}
