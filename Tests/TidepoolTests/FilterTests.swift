import Foundation
import XCTest

@testable import Tidepool

final class FilterTests: XCTestCase {
    let words = ["alpha", "beta", "gamma", "delta", "al", "", "é", "zeta"]

    func randomAttributes(_ rng: inout SplitMix64) -> [String: AttributeValue] {
        var a: [String: AttributeValue] = [:]
        func maybe() -> Bool { rng.next() % 4 != 0 }
        if maybe() { a["s"] = rng.next() % 10 == 0 ? .null : .string(words[Int(rng.next() % UInt64(words.count))]) }
        if maybe() { a["i"] = .int(Int64(rng.next() % 21) - 10) }
        if maybe() { a["f"] = .float(Double(rng.next() % 100) / 10 - 5) }
        if maybe() { a["b"] = .bool(rng.next() % 2 == 0) }
        if maybe() { a["tags"] = .stringArray((0..<Int(rng.next() % 3)).map { _ in words[Int(rng.next() % 4)] }) }
        return a
    }

    func randomValue(_ field: String, _ rng: inout SplitMix64) -> AttributeValue {
        switch field {
        case "s", "tags": return .string(words[Int(rng.next() % UInt64(words.count))])
        case "i": return .int(Int64(rng.next() % 25) - 12)
        case "f": return rng.next() % 2 == 0 ? .float(Double(rng.next() % 100) / 10 - 5) : .int(Int64(rng.next() % 11) - 5)
        default: return .bool(rng.next() % 2 == 0)
        }
    }

    func randomFilter(_ rng: inout SplitMix64, depth: Int = 0) -> Filter {
        let fields = ["s", "i", "f", "b", "tags"]
        let field = fields[Int(rng.next() % 5)]
        let roll = rng.next() % (depth < 2 ? 14 : 11)
        switch roll {
        case 0: return .eq(field, randomValue(field, &rng))
        case 1: return .ne(field, rng.next() % 5 == 0 ? .null : randomValue(field, &rng))
        case 2: return .in(field, [randomValue(field, &rng), randomValue(field, &rng)])
        case 3: return .notIn(field, [randomValue(field, &rng), .null])
        case 4, 5, 6, 7:
            let f = ["s", "i", "f"][Int(rng.next() % 3)]
            let v = randomValue(f, &rng)
            return [Filter.lt(f, v), .lte(f, v), .gt(f, v), .gte(f, v)][Int(roll - 4)]
        case 8: return .exists(field)
        case 9: return .contains("tags", words[Int(rng.next() % 5)])
        case 10: return .prefix("s", ["a", "al", "", "z", "é"][Int(rng.next() % 5)])
        case 11: return .and([randomFilter(&rng, depth: depth + 1), randomFilter(&rng, depth: depth + 1)])
        case 12: return .or([randomFilter(&rng, depth: depth + 1), randomFilter(&rng, depth: depth + 1)])
        default: return .not(randomFilter(&rng, depth: depth + 1))
        }
    }

    /// The indexes (segments) and the direct evaluation (memtable) agree with the reference semantics.
    func testIndexesAgreeWithReferenceOnRandomDocumentsAndFilters() throws {
        var rng = SplitMix64(seed: 99)
        let n = 600
        let attrs = (0..<n).map { _ in randomAttributes(&rng) }
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("c", dimension: 2, metric: .l2, config: CollectionConfig(minRowsForGraph: 100))
            try c.upsert((0..<400).map { Document(id: .uint(UInt64($0)), vector: [Float($0), 0], attributes: attrs[$0]) })
            try c.flush()  // rows 0..<400 in a segment
            try c.upsert((400..<n).map { Document(id: .uint(UInt64($0)), vector: [Float($0), 0], attributes: attrs[$0]) })
            try c.delete(ids: [1, 2, 450])
            let live = Set((0..<n).filter { ![1, 2, 450].contains($0) })
            for trial in 0..<300 {
                let f = randomFilter(&rng)
                let validated = try f.validated(against: c.schema, collection: "c")
                let expected = live.filter { validated.matches(attrs[$0]) }
                XCTAssertEqual(try c.count(filter: f), expected.count, "trial \(trial): \(f)")
                let page = try c.scan(filter: f, limit: 100_000, includeVectors: false)
                XCTAssertEqual(
                    Set(
                        page.documents.compactMap {
                            if case .uint(let v) = $0.id { return Int(v) }; return nil
                        }), expected, "trial \(trial): \(f)")
            }
            try db.close()
        }
    }

    func testFilteredSearchKeepsRecallAtEverySelectivity() throws {
        let n = 8000, dim = 16
        let base = clusteredVectors(n, dim, clusters: 30, seed: 31)
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("c", dimension: dim, metric: .l2, config: CollectionConfig(minRowsForGraph: 1000))
            // bucket = i % 1000: selectivity of "bucket < t" is t/1000.
            try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0], attributes: ["bucket": .int(Int64($0 % 1000))]) })
            try c.flush()
            let queries = randomVectors(40, dim, seed: 8).map { $0.map { $0 * 2 } }
            for threshold in [500, 200, 100, 10, 1] {  // 20%: two-hop graph; 1%, 0.1%: exact scan of allowed rows
                let filter = Filter.lt("bucket", .int(Int64(threshold)))
                var hits = 0, total = 0
                for q in queries {
                    let allowed = (0..<n).filter { $0 % 1000 < threshold }
                    let truth = Set(
                        allowed.map { ($0, referenceDistance(base[$0], q, .l2)) }.sorted { $0.1 < $1.1 }.prefix(10).map {
                            DocumentID.uint(UInt64($0.0))
                        })
                    let got = try c.search(vector: q, k: 10, options: SearchOptions(filter: filter))
                    XCTAssertEqual(got.count, min(10, allowed.count), "selectivity \(threshold)/1000 returned too few")
                    for h in got {
                        if case .uint(let v) = h.id { XCTAssertLessThan(Int(v) % 1000, threshold, "a disallowed row came back") }
                    }
                    hits += got.filter { truth.contains($0.id) }.count
                    total += truth.count
                }
                XCTAssertGreaterThanOrEqual(Double(hits) / Double(total), 0.95, "recall@10 at selectivity \(threshold)/1000")
            }
            // Fewer matches than k: exactly those.
            let few = try c.search(vector: queries[0], k: 10, options: SearchOptions(filter: .in("bucket", [.int(7)])))
            XCTAssertEqual(Set(few.map(\.id)), Set((0..<8).map { DocumentID.uint(UInt64($0 * 1000 + 7)) }))
            try db.close()
        }
    }

    func testTypeClashesAndUnknownAttributesAreErrors() throws {
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("c", dimension: 2, metric: .l2, config: CollectionConfig(attributeTypes: ["price": .float]))
            try c.upsert(Document(id: 1, vector: [1, 1], attributes: ["name": .string("a"), "price": .int(3)]))
            XCTAssertEqual(try c.get(ids: [1]).first?.attributes["price"], .float(3))
            XCTAssertThrowsError(try c.upsert(Document(id: 2, vector: [1, 1], attributes: ["name": .int(4)]))) {
                XCTAssertTrue("\($0)".contains("'name'"), "\($0)")
            }
            // A clash inside one batch changes nothing.
            XCTAssertThrowsError(
                try c.upsert([
                    Document(id: 3, vector: [1, 1], attributes: ["new": .bool(true)]),
                    Document(id: 4, vector: [1, 1], attributes: ["new": .string("x")]),
                ]))
            XCTAssertEqual(c.count, 1)
            XCTAssertThrowsError(try c.search(vector: [1, 1], k: 1, options: SearchOptions(filter: .eq("nope", .int(1))))) {
                XCTAssertTrue("\($0)".contains("unknown attribute 'nope'"), "\($0)")
            }
            XCTAssertThrowsError(try c.count(filter: .lt("name", .int(3))))
            XCTAssertThrowsError(try c.count(filter: .contains("name", "a")))
            XCTAssertEqual(try c.count(filter: .gte("price", .int(3))), 1)
            try db.close()
            // The schema survives a reopen.
            let db2 = try store.open()
            XCTAssertEqual(try db2.collection("c").attributeTypes, ["name": .string, "price": .float])
            try db2.close()
        }
    }

    func testJSONFilterSyntax() throws {
        let f = try Filter(
            json:
                #"{"and": [{"month": {"gte": "2024-01", "lt": "2025-01"}}, {"lang": "en"}, {"not": {"tags": {"contains": "spam"}}}], "rank": {"in": [1, 2.5, null]}, "ok": {"exists": true}}"#
        )
        XCTAssertEqual(
            f,
            .and([
                .and([
                    .and([.gte("month", .string("2024-01")), .lt("month", .string("2025-01"))]), .eq("lang", .string("en")),
                    .not(.contains("tags", "spam")),
                ]),
                .exists("ok"),
                .in("rank", [.int(1), .float(2.5), .null]),
            ]))
        XCTAssertEqual(try Filter(json: #"{"flag": true}"#), .eq("flag", .bool(true)))
        XCTAssertEqual(try Filter(json: #"{"n": 3}"#), .eq("n", .int(3)))
        for bad in [#"[]"#, #"{}"#, #"{"a": {"between": 1}}"#, #"{"and": []}"#, #"{"a": {"exists": 1}}"#, "not json"] {
            XCTAssertThrowsError(try Filter(json: bad), bad)
        }
    }

    func testDeleteByFilterAndScanPagination() throws {
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("c", dimension: 2, metric: .l2, config: CollectionConfig(minRowsForGraph: 50))
            try c.upsert(
                (0..<300).map { Document(id: .uint(UInt64($0)), vector: [Float($0), 1], attributes: ["even": .bool($0 % 2 == 0)]) })
            try c.flush()
            try c.upsert((0..<50).map { Document(id: .string("s\($0)"), vector: [1, Float($0)], attributes: ["even": .bool(true)]) })
            XCTAssertEqual(try c.delete(filter: .eq("even", .bool(false))), 150)
            XCTAssertEqual(c.count, 200)
            XCTAssertEqual(try c.count(filter: .eq("even", .bool(false))), 0)
            // Pages cover every document exactly once, in id order, integers first.
            var seen: [DocumentID] = []
            var cursor: DocumentID?
            repeat {
                let page = try c.scan(after: cursor, limit: 37)
                seen += page.documents.map(\.id)
                cursor = page.next
            } while cursor != nil
            XCTAssertEqual(seen.count, 200)
            XCTAssertEqual(seen, seen.sorted())
            XCTAssertEqual(seen.first, .uint(0))
            XCTAssertEqual(seen.last, .string("s9"))
            try db.close()
            // The deletes went through the log: they survive a reopen.
            let db2 = try store.open()
            XCTAssertEqual(try db2.collection("c").count, 200)
            try db2.close()
        }
    }
}
