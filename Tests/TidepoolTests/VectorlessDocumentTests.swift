import Foundation
import XCTest

@testable import Tidepool

/// Documents without vectors: stored, read, filtered, scanned and found by text; never returned
/// by a vector search, in memory, after a flush, a compaction, a log replay, under every index.
final class VectorlessDocumentTests: XCTestCase {
    /// Ids 0..<n: every fifth document (id % 5 == 4) has no vector.
    private func documents(_ n: Int, dim: Int, seed: UInt64) -> [Document] {
        let v = clusteredVectors(n, dim, clusters: 20, seed: seed)
        return (0..<n).map { i in
            let attrs: [String: AttributeValue] = [
                "n": .int(Int64(i)), "kind": .string(i % 5 == 4 ? "note" : "item"), "body": .string("word\(i % 7) common"),
            ]
            return i % 5 == 4
                ? Document(id: .uint(UInt64(i)), attributes: attrs) : Document(id: .uint(UInt64(i)), vector: v[i], attributes: attrs)
        }
    }

    private func assertServes(
        _ c: Collection, _ docs: [Document], queries: [[Float]], truth: [Set<DocumentID>], minRecall: Double, _ stage: String
    ) throws {
        let vectorless = Set(docs.filter { !$0.hasVector }.map(\.id))
        for q in queries.prefix(20) {
            for options in [SearchOptions(), SearchOptions(exact: true), SearchOptions(filter: .lt("n", .int(1000)))] {
                let hits = try c.search(vector: q, k: 50, options: options)
                XCTAssertEqual(hits.count, 50, stage)
                XCTAssertTrue(hits.allSatisfy { !vectorless.contains($0.id) }, "\(stage): a document without a vector was returned")
            }
        }
        let batch = try c.search(vectors: Array(queries.prefix(5)), k: 20, options: SearchOptions(exact: true))
        XCTAssertTrue(batch.hits.joined().allSatisfy { !vectorless.contains($0.id) }, stage)
        XCTAssertGreaterThanOrEqual(try recall(c, queries, truth), minRecall, stage)
        // Everything else finds them.
        XCTAssertEqual(try c.count(filter: nil), docs.count, stage)
        XCTAssertEqual(try c.count(filter: .eq("kind", .string("note"))), vectorless.count, stage)
        let got = try c.get(ids: [.uint(4), .uint(5)])
        XCTAssertEqual(got.map(\.id), [.uint(4), .uint(5)], stage)
        XCTAssertEqual(got[0].vector, [], stage)
        XCTAssertFalse(got[0].hasVector)
        XCTAssertEqual(got[0].attributes["kind"], .string("note"))
        XCTAssertEqual(got[1].vector.count, c.dimension, stage)
        let scanned = try c.scan(filter: .eq("kind", .string("note")), after: nil, limit: 10_000, includeVectors: true)
        XCTAssertEqual(Set(scanned.documents.map(\.id)), vectorless, stage)
        XCTAssertTrue(scanned.documents.allSatisfy { $0.vector.isEmpty }, stage)
        let text = try c.textSearch("word4", k: 1000)
        XCTAssertTrue(text.contains { vectorless.contains($0.id) }, "\(stage): text search finds documents without vectors")
    }

    func testNeverReturnedByVectorSearchAndFoundByEverythingElse() throws {
        let dim = 16
        let docs = documents(6000, dim: dim, seed: 3)
        let withVectors = docs.filter(\.hasVector)
        let queries = clusteredVectors(40, dim, clusters: 20, seed: 99)
        // Truth over the documents that have vectors, by id.
        let truth = queries.map { q in
            Set(bruteForce(withVectors.map(\.vector), q, k: 10, metric: .l2).map { withVectors[$0].id })
        }
        for (label, config) in [
            ("hnsw", CollectionConfig(minRowsForGraph: 1000, text: TextIndexConfig(fields: ["body"]), index: .hnsw)),
            (
                "hnsw-sq8",
                CollectionConfig(minRowsForGraph: 1000, text: TextIndexConfig(fields: ["body"]), quantization: .sq8, index: .hnsw)
            ),
            ("ivf", CollectionConfig(minRowsForGraph: 1000, text: TextIndexConfig(fields: ["body"]), index: .ivf)),
        ] {
            let dir = TempDir("\(#function)\(label)")
            // A small memtable: its graph is built as rows arrive, rows without vectors skipped.
            let db = try Database(path: dir.path)
            let coll = try db.createCollection(
                "c", dimension: dim, metric: .l2,
                config: {
                    var c = config
                    c.memtableBytes = 4000 * dim * 4
                    return c
                }())
            for chunk in stride(from: 0, to: docs.count, by: 500) { try coll.upsert(Array(docs[chunk..<min(chunk + 500, docs.count)])) }
            let minRecall = label == "ivf" ? 0.8 : 0.9
            try assertServes(coll, docs, queries: queries, truth: truth, minRecall: minRecall, "\(label) in memory")
            try coll.flush()
            try assertServes(coll, docs, queries: queries, truth: truth, minRecall: minRecall, "\(label) flushed")
            try coll.compact()
            try assertServes(coll, docs, queries: queries, truth: truth, minRecall: minRecall, "\(label) compacted")
            try db.close()
            XCTAssertEqual(Database.verify(path: dir.path), [], label)
        }
    }

    func testSurvivesLogReplayAndChangesEitherWay() throws {
        let dir = TempDir()
        let docs = documents(300, dim: 8, seed: 5)
        do {
            let db = try Database(path: dir.path)
            let c = try db.createCollection("c", dimension: 8, metric: .cosine)  // no zero vector to normalize
            try c.upsert(docs)
            // A vector given later makes a document searchable; one taken away removes it.
            try c.upsert([Document(id: .uint(4), vector: [1, 0, 0, 0, 0, 0, 0, 0]), Document(id: .uint(0), attributes: ["n": .int(0)])])
            try db.close()  // not flushed: the reopening replays the log
        }
        let db = try Database(path: dir.path)
        let c = try db.collection("c")
        let hits = try c.search(vector: [1, 0, 0, 0, 0, 0, 0, 0], k: 300)
        XCTAssertEqual(hits.first?.id, .uint(4))
        XCTAssertFalse(hits.contains { $0.id == .uint(0) })
        XCTAssertEqual(hits.count, 240 + 1 - 1)
        XCTAssertEqual(try c.get(ids: [.uint(0)]).first?.vector, [])
        try c.flush()
        XCTAssertEqual(try c.search(vector: [1, 0, 0, 0, 0, 0, 0, 0], k: 300).count, 240)
        // A collection of only such documents answers vector searches with nothing.
        let onlyDB = try Database(path: dir.path + "-only")
        let only = try onlyDB.createCollection("o", dimension: 4, metric: .l2)
        defer { try? FileManager.default.removeItem(atPath: dir.path + "-only") }
        try only.upsert((0..<50).map { Document(id: .uint(UInt64($0)), attributes: ["n": .int(Int64($0))]) })
        XCTAssertEqual(try only.search(vector: [0, 0, 0, 0], k: 5).count, 0)
        try only.flush()
        XCTAssertEqual(try only.search(vector: [0, 0, 0, 0], k: 5, options: SearchOptions(exact: true)).count, 0)
        XCTAssertEqual(try only.count(filter: nil), 50)
        try onlyDB.close()
        try db.close()
    }

    func testDamagedVectorlessSectionIsNamed() throws {
        let dir = TempDir()
        do {
            let db = try Database(path: dir.path)
            let c = try db.createCollection("c", dimension: 4, metric: .l2)
            var docs: [Document] = []
            for i in 0..<100 {
                let id = DocumentID.uint(UInt64(i))
                docs.append(i % 3 == 0 ? Document(id: id, attributes: [:]) : Document(id: id, vector: [Float(i), 1, 2, 3]))
            }
            try c.upsert(docs)
            try c.flush()
            try db.close()
        }
        // The section sits just before the section table; its table entry says where.
        let segDir = dir.path + "/collections/c/segments"
        let file = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: segDir).first { $0.hasSuffix(".tps") })
        let bytes = try Data(contentsOf: URL(fileURLWithPath: segDir + "/" + file))
        let entries = try bytes.withUnsafeBytes { raw -> [SectionEntry] in
            let header = try SegmentHeader.decode(raw, file: file, dimension: 4, metric: .l2)
            XCTAssertNotEqual(header.flags & SegmentHeader.hasVectorlessFlag, 0)
            return try SectionEntry.decodeTable(raw, file: file, footer: try SegmentFooter.decode(raw, file: file, headerRows: header.rows))
        }
        let section = try XCTUnwrap(entries.first { $0.kind == SegmentFormat.Kind.vectorless.rawValue })
        XCTAssertEqual(section.length, 16)
        try flipSegmentByte(dir.path, collection: "c") { _ in section.offset + 1 }
        XCTAssertThrowsError(try Database(path: dir.path).collection("c").search(vector: [1, 1, 2, 3], k: 1)) { error in
            XCTAssertTrue("\(error)".contains(file) && "\(error)".contains("section 9"), "\(error)")
        }
        assertVerifyReportsOneDamagedSection(dir.path, file: file, section: 9)
    }
}
