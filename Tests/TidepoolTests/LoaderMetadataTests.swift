import Foundation
import XCTest

@testable import Tidepool

/// Metadata as loaders produce it: an attribute that is an integer in one document and a float in
/// another is a float; integer and float arrays; objects, stored whole and filtered by dotted
/// path; a key first seen as null or as an empty array. Every filter answers alike in memory, in
/// segments (their indexes) and by the reference semantics.
final class LoaderMetadataTests: XCTestCase {
    private let filters: [Filter] = [
        .eq("price", .int(3)), .eq("price", .float(2.75)), .gt("price", .float(2.5)), .lte("price", .int(2)),
        .gte("price", .float(2.000001)), .lt("price", .float(-0.5)), .in("price", [.int(1), .float(2.75), .int(40)]),
        .ne("price", .int(3)), .eq("sizes", .int(7)), .eq("sizes", .float(7.5)), .in("sizes", [.int(9), .float(1.5)]),
        .eq("ids", .int(12)), .exists("late"), .eq("late", .string("x")), .notIn("price", [.int(3), .int(4)]),
    ]

    private func documents(_ range: Range<Int>) -> [Document] {
        range.map { i in
            var a: [String: AttributeValue] = [
                // Integers first, floats from row 50 on (the attribute widens), negatives too.
                "price": i < 50 ? .int(Int64(i % 5) - 1) : .float(Double(i % 7) * 0.25 + 1),
                "sizes": i < 50 ? .intArray([Int64(i % 10), 7]) : .floatArray([Double(i % 4) + 0.5]),
                "ids": .intArray(i % 3 == 0 ? [] : [Int64(i), 12]),
                "late": i < 30 ? .null : .string(i % 2 == 0 ? "x" : "y"),
            ]
            if i % 11 == 0 { a["price"] = nil }
            return Document(id: .uint(UInt64(i)), vector: [Float(i), 1], attributes: a)
        }
    }

    private func expected(_ docs: [Document], _ f: Filter) -> Set<DocumentID> {
        // The reference semantics over the documents as the schema reads them (integers of widened attributes as floats).
        let schema = AttributeSchema(types: ["price": .float, "sizes": .floatArray, "ids": .intArray, "late": .string])
        return Set(docs.filter { f.matches(schema.normalized($0.attributes)) }.map(\.id))
    }

    func testWidenedAttributesAnswerAlikeEverywhereAndReadAsTheirType() throws {
        let dir = TempDir()
        let docs = documents(0..<120)
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 2, metric: .l2)
        // Three segments: integers only, then the widening floats, then more of both in memory.
        try c.upsert(Array(docs[0..<45]))
        try c.flush()
        try c.upsert(Array(docs[45..<90]))
        try c.flush()
        try c.upsert(Array(docs[90..<120]))
        XCTAssertEqual(c.attributeTypes["price"], .float)
        XCTAssertEqual(c.attributeTypes["sizes"], .floatArray)
        XCTAssertEqual(c.attributeTypes["ids"], .intArray)
        XCTAssertEqual(c.attributeTypes["late"], .string, "a key first seen as null takes the type of its first value")
        func check(_ stage: String) throws {
            for f in filters {
                let got = Set(try c.scan(filter: f, after: nil, limit: 10_000, includeVectors: false).documents.map(\.id))
                XCTAssertEqual(got, expected(docs, f), "\(stage): \(f)")
                XCTAssertEqual(try c.count(filter: f), got.count, "\(stage): \(f)")
            }
            // Integers written before the widening read back as floats.
            let one = try XCTUnwrap(try c.get(ids: [.uint(4)]).first)
            XCTAssertEqual(one.attributes["price"], .float(3))
            XCTAssertEqual(one.attributes["sizes"], .floatArray([4, 7]))
            XCTAssertEqual(one.attributes["ids"], .intArray([4, 12]))
            XCTAssertEqual(try c.get(ids: [.uint(0)]).first?.attributes["ids"], .intArray([]))
            let hit = try XCTUnwrap(try c.search(vector: [4, 1], k: 1, options: SearchOptions(includeAttributes: true)).first)
            XCTAssertEqual(hit.attributes?["price"], .float(3))
        }
        try check("segments and memory")
        try c.compact()
        try check("compacted")
        try db.close()
        // Reopened: the widening is remembered (the log replays the floats after the integers).
        let again = try Database(path: dir.path)
        XCTAssertEqual(try again.collection("c").attributeTypes["price"], .float)
        try again.close()
    }

    func testWhatIsRefused() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 1, metric: .l2)
        try c.upsert([Document(id: .uint(1), vector: [1], attributes: ["n": .int(1), "tags": .stringArray(["a"]), "xs": .intArray([1])])])
        let refusals: [([String: AttributeValue], String)] = [
            (["n": .string("one")], "is string, but the attribute holds int"),
            (["tags": .intArray([1])], "is intArray, but the attribute holds stringArray"),
            (["n": .intArray([])], "is an array, but the attribute holds int"),
            (["xs": .floatArray([.infinity])], "not finite"),
        ]
        for (attrs, message) in refusals {
            XCTAssertThrowsError(try c.upsert([Document(id: .uint(2), vector: [1], attributes: attrs)]), message) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        XCTAssertEqual(try c.count(filter: nil), 1, "a refused batch changes nothing")
        // Float bounds past Int64's range against an integer column in a segment: every row or none, no trap.
        try c.flush()
        let huge = try JSONParser.parse(Array(#"{"n": {"gte": 9223372036854775808}}"#.utf8))
        XCTAssertEqual(try c.count(filter: try Filter(json: huge, path: "filter")), 0)
        XCTAssertEqual(try c.count(filter: .lt("n", .float(9.25e18))), 1)
        XCTAssertEqual(try c.count(filter: .gt("n", .float(-9.25e18))), 1)
        XCTAssertEqual(try c.count(filter: .in("n", [.float(1), .float(1.5), .float(2)])), 1)
        for (f, message) in [
            (Filter.eq("xs", .intArray([1])), "compares with an array"), (.lt("xs", .int(1)), "ordering"),
            (.contains("xs", "1"), "string-array"),
        ] {
            XCTAssertThrowsError(try c.count(filter: f), "\(f)") { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        // From JSON: arrays of strings, or of numbers; nothing else.
        XCTAssertEqual(try AttributeValue(json: try JSONParser.parse(Array("[1, 2.5]".utf8)), path: "a"), .floatArray([1, 2.5]))
        XCTAssertEqual(try AttributeValue(json: try JSONParser.parse(Array("[1, 2]".utf8)), path: "a"), .intArray([1, 2]))
        XCTAssertThrowsError(try AttributeValue(json: try JSONParser.parse(Array("[1, \"a\"]".utf8)), path: "a")) {
            XCTAssertTrue("\($0)".contains("strings or numbers"), "\($0)")
        }
        // A float array's whole numbers are written as floats, so an export reads back as it was.
        let line = String(
            decoding: Document(id: .uint(1), attributes: ["f": .floatArray([2, 0.5]), "g": .float(3)]).jsonLine(), as: UTF8.self)
        XCTAssertEqual(line, #"{"id":1,"attributes":{"f":[2.0,0.5],"g":3.0}}"#)
        try db.close()
    }

    func testObjectsStoredWholeAndFilteredByDottedPath() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 1, metric: .l2)
        var docs: [Document] = []
        for i in 0..<60 {
            var coords: [String: AttributeValue] = ["x": .float(Double(i) / 10)]
            if i % 4 == 0 { coords["tags"] = .stringArray(["t\(i % 8)"]) }
            let page: AttributeValue = i < 40 ? .int(Int64(i % 6)) : .float(Double(i % 6) + 0.5)
            let meta: [String: AttributeValue] = ["page": page, "source": .string("doc\(i % 3).pdf"), "coords": .object(coords)]
            let attrs: [String: AttributeValue] = i % 10 == 9 ? ["other": .bool(true)] : ["meta": .object(meta)]
            docs.append(Document(id: .uint(UInt64(i)), vector: [Float(i)], attributes: attrs))
        }
        try c.upsert(Array(docs[0..<30]))
        try c.flush()
        try c.upsert(Array(docs[30...]))
        XCTAssertEqual(c.attributeTypes["meta"], .object)
        XCTAssertEqual(c.attributeTypes["meta.page"], .float, "a member widens like an attribute")
        XCTAssertEqual(c.attributeTypes["meta.coords.x"], .float)
        let schema = AttributeSchema(types: c.attributeTypes)
        let filters: [Filter] = [
            .gt("meta.page", .int(2)), .eq("meta.source", .string("doc1.pdf")), .lt("meta.coords.x", .float(2.05)),
            .exists("meta"), .exists("meta.coords.tags"), .eq("meta.coords.tags", .string("t4")),
            .and([.gte("meta.page", .float(1.5)), .not(.eq("meta.source", .string("doc0.pdf")))]), .eq("meta.page", .null),
        ]
        for stage in ["segment and memory", "compacted"] {
            if stage == "compacted" { try c.compact() }
            for f in filters {
                let got = Set(try c.scan(filter: f, after: nil, limit: 1000, includeVectors: false).documents.map(\.id))
                let want = Set(docs.filter { f.matches(schema.normalized($0.attributes)) }.map(\.id))
                XCTAssertEqual(got, want, "\(stage): \(f)")
                XCTAssertFalse(want.isEmpty, "\(f) should match something")
            }
            // Stored whole; integers of the widened member read as floats.
            let got = try XCTUnwrap(try c.get(ids: [.uint(4)]).first?.attributes["meta"])
            let coords: AttributeValue = .object(["x": .float(0.4), "tags": .stringArray(["t4"])])
            XCTAssertEqual(got, .object(["page": .float(4), "source": .string("doc1.pdf"), "coords": coords]))
        }
        let refusals: [([String: AttributeValue], String)] = [
            (["meta": .object(["page": .string("three")])], "'meta.page' of document 99 is string"),
            (["meta": .string("flat")], "is string, but the attribute holds object"),
            (["other": .object(["a": .int(1)])], "is an object, but the attribute holds bool"),
        ]
        for (attrs, message) in refusals {
            XCTAssertThrowsError(try c.upsert([Document(id: .uint(99), vector: [1], attributes: attrs)])) {
                XCTAssertTrue("\($0)".contains(message), "\($0)")
            }
        }
        XCTAssertThrowsError(try c.count(filter: .eq("meta", .string("x")))) { XCTAssertTrue("\($0)".contains("dotted path"), "\($0)") }
        var deep = AttributeValue.int(1)
        for _ in 0..<10 { deep = .object(["d": deep]) }
        XCTAssertThrowsError(try c.upsert([Document(id: .uint(98), vector: [1], attributes: ["deep": deep])])) {
            XCTAssertTrue("\($0)".contains("nested deeper"), "\($0)")
        }
        try db.close()
        // The log replays objects and their members' types.
        let again = try Database(path: dir.path)
        let reopened = try again.collection("c")
        XCTAssertEqual(reopened.attributeTypes["meta.page"], .float)
        let f = Filter.gt("meta.page", .float(4.4))
        XCTAssertEqual(try reopened.count(filter: f), docs.filter { f.matches(schema.normalized($0.attributes)) }.count)
        try again.close()
    }
}
