import Foundation
import XCTest

@testable import Tidepool

final class TextTests: XCTestCase {
    let corpus = [
        "The quick brown fox jumps over the lazy dog",
        "A quick brown dog",
        "Postgres and SQLite are databases; postgres is big",
        "Vector search in Swift",
    ]

    func makeCollection(_ store: TestStore, flush: Bool) throws -> (Database, Tidepool.Collection) {
        let db = try store.open()
        let c = try db.createCollection(
            "t", dimension: 2, metric: .l2,
            config: CollectionConfig(
                minRowsForGraph: 1000, text: TextIndexConfig(fields: ["body"])))
        try c.upsert(
            corpus.enumerated().map {
                Document(
                    id: .uint(UInt64($0.offset)), vector: [Float($0.offset), 0],
                    attributes: ["body": .string($0.element), "n": .int(Int64($0.offset))])
            })
        if flush { try c.flush() }
        return (db, c)
    }

    /// Lucene's BM25 by hand: idf = ln(1 + (N - df + 0.5)/(df + 0.5)), tf/(tf + k1(1 - b + b·dl/avgdl)).
    func expectedScore(doc: Int, terms: [String]) -> Double {
        let analyzer = TextAnalyzer()
        let docs = corpus.map { analyzer.terms($0) }
        let n = Double(docs.count), avgdl = Double(docs.reduce(0) { $0 + $1.count }) / n
        var score = 0.0
        for t in terms {
            let df = Double(docs.filter { $0.contains(t) }.count)
            let tf = Double(docs[doc].filter { $0 == t }.count)
            if tf == 0 { continue }
            let idf = log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * Double(docs[doc].count) / avgdl))
        }
        return score
    }

    func testAnalyzer() {
        XCTAssertEqual(
            TextAnalyzer().terms("Hello, WORLD! snake_case x2 naïve—ok"), ["hello", "world", "snake", "case", "x2", "naïve", "ok"])
        XCTAssertEqual(
            TextAnalyzer(stemEnglish: true, stopWords: TextAnalyzer.englishStopWords).terms("The classes of running dogs"),
            ["class", "runn", "dog"])
    }

    func testScoresMatchHandComputedValuesInMemoryAndOnDisk() throws {
        for flush in [false, true] {
            try forEachStorage { store in
                let (db, c) = try makeCollection(store, flush: flush)
                let hits = try c.textSearch("quick dog", k: 10)
                XCTAssertEqual(hits.map(\.id), [1, 0], "flush \(flush)")
                for h in hits {
                    guard case .uint(let d) = h.id else { return XCTFail() }
                    XCTAssertEqual(h.score, expectedScore(doc: Int(d), terms: ["quick", "dog"]), accuracy: 1e-5, "flush \(flush) doc \(d)")
                }
                // Repeated terms in a document count.
                let pg = try c.textSearch("postgres", k: 3)
                XCTAssertEqual(pg.map(\.id), [2])
                XCTAssertEqual(pg[0].score, expectedScore(doc: 2, terms: ["postgres"]), accuracy: 1e-5)
                try db.close()
            }
        }
    }

    func testMatchModesFiltersAndPersistence() throws {
        try forEachStorage { store in
            do {
                let (db, c) = try makeCollection(store, flush: true)
                try c.upsert(Document(id: 9, vector: [9, 9], attributes: ["body": .string("dog brown quick"), "n": .int(9)]))  // in memory
                XCTAssertEqual(Set(try c.textSearch("quick brown", k: 10, options: TextSearchOptions(match: .all)).map(\.id)), [0, 1, 9])
                XCTAssertEqual(Set(try c.textSearch("quick brown", k: 10, options: TextSearchOptions(match: .phrase)).map(\.id)), [0, 1])
                XCTAssertEqual(
                    Set(try c.textSearch("brown", k: 10, options: TextSearchOptions(filter: .gte("n", .int(1)))).map(\.id)), [1, 9])
                XCTAssertEqual(try c.textSearch("zebra", k: 10), [])
                XCTAssertEqual(try c.textSearch("...", k: 10), [])
                try c.delete(ids: [1])
                XCTAssertFalse(try c.textSearch("brown", k: 10).map(\.id).contains(1))
                try db.close()
            }
            // After reopening (segment + replayed WAL), the same answers.
            let db = try store.open()
            let c = try db.collection("t")
            XCTAssertEqual(Set(try c.textSearch("brown", k: 10).map(\.id)), [0, 9])
            try c.compact()
            XCTAssertEqual(Set(try c.textSearch("brown", k: 10).map(\.id)), [0, 9])
            XCTAssertThrowsError(try db.createCollection("plain", dimension: 2, metric: .l2).textSearch("x", k: 1))
            try db.close()
        }
    }

    func testHybridFusionReportsComponentsAndAppliesFilters() throws {
        try forEachStorage { store in
            let (db, c) = try makeCollection(store, flush: true)
            // Vector ranking from [3, 0]: 3, 2, 1, 0. Text ranking for "postgres dog": 2, then 1 and 0 (dog).
            let hits = try c.hybridSearch(vector: [3, 0], text: "postgres dog", k: 4)
            XCTAssertEqual(hits.first?.id, 2)  // rank 2 in vectors, rank 1 in text
            let top = hits[0]
            XCTAssertEqual(top.vectorRank, 2)
            XCTAssertEqual(top.textRank, 1)
            XCTAssertEqual(top.score, 1.0 / 62 + 1.0 / 61, accuracy: 1e-12)
            XCTAssertEqual(top.vectorDistance!, 1, accuracy: 1e-6)
            let doc3 = try XCTUnwrap(hits.first { $0.id == 3 })
            XCTAssertNil(doc3.textRank)
            XCTAssertEqual(doc3.score, 1.0 / 61, accuracy: 1e-12)
            let filtered = try c.hybridSearch(
                vector: [3, 0], text: "postgres dog", k: 4, options: HybridOptions(filter: .lt("n", .int(2))))
            XCTAssertEqual(Set(filtered.map(\.id)), [0, 1])
            let weighted = try c.hybridSearch(
                vector: [3, 0], text: "postgres", k: 2, options: HybridOptions(fusion: .weighted(vectorWeight: 0)))
            XCTAssertEqual(weighted.first?.id, 2)
            XCTAssertEqual(weighted.first!.score, 1, accuracy: 1e-9)
            try db.close()
        }
    }
}
