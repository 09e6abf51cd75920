import Foundation
import XCTest

@testable import Tidepool

/// Facet counts under a filter, against counts made by hand from the documents, in memory and in
/// segments, for strings, widened numbers, arrays and object members.
final class FacetTests: XCTestCase {
    func testFacetsCountWhatTheFilterAdmits() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 1, metric: .l2)
        var docs: [Document] = []
        for i in 0..<500 {
            var a: [String: AttributeValue] = [
                "lang": .string(["en", "de", "fr", "es", "it"][i % 5 == 0 ? 0 : i % 7 % 5]),
                "year": i < 250 ? .int(Int64(2000 + i % 4)) : .float(Double(2000 + i % 4)),
                "tags": .stringArray(i % 3 == 0 ? ["a", "b", "a"] : ["b"]),
                "meta": .object(["source": .string("s\(i % 3)")]),
            ]
            if i % 10 == 0 { a["lang"] = .null }
            docs.append(Document(id: .uint(UInt64(i)), vector: [Float(i)], attributes: a))
        }
        try c.upsert(Array(docs[0..<300]))
        try c.flush()
        try c.upsert(Array(docs[300...]))
        try c.delete(ids: [.uint(1), .uint(2)])
        let live = docs.filter { $0.id != .uint(1) && $0.id != .uint(2) }
        let schema = AttributeSchema(types: c.attributeTypes)
        func expected(_ attribute: String, _ f: Filter?) -> [AttributeValue: Int] {
            var counts: [AttributeValue: Int] = [:]
            for d in live where f?.matches(schema.normalized(d.attributes)) ?? true {
                switch Filter.value(attribute, schema.normalized(d.attributes)) {
                case .stringArray(let a)?: for s in Set(a) { counts[.string(s), default: 0] += 1 }
                case .null?, nil: break
                case let v?: counts[v, default: 0] += 1
                }
            }
            return counts
        }
        for (attribute, f) in [
            ("lang", nil), ("lang", Filter.gte("year", .int(2002))), ("year", .eq("lang", .string("en"))), ("tags", nil),
            ("meta.source", .eq("tags", .string("a"))),
        ] as [(String, Filter?)] {
            let got = try c.facets(attribute, filter: f, limit: 100)
            let want = expected(attribute, f)
            XCTAssertEqual(
                Dictionary(uniqueKeysWithValues: got.map { ($0.value, $0.count) }), want, "\(attribute) \(String(describing: f))")
            XCTAssertEqual(got.map(\.count), got.map(\.count).sorted(by: >), "most frequent first")
        }
        XCTAssertEqual(try c.facets("lang", limit: 2).count, 2)
        XCTAssertEqual(try c.facets("year").first?.value.widened, .float(2000), "widened integers count as floats")
        XCTAssertThrowsError(try c.facets("nope")) { XCTAssertTrue("\($0)".contains("no attribute 'nope'"), "\($0)") }
        XCTAssertThrowsError(try c.facets("meta")) { XCTAssertTrue("\($0)".contains("is an object"), "\($0)") }
        XCTAssertThrowsError(try c.facets("lang", limit: 0))
        XCTAssertEqual(try c.count(filter: .eq("lang", .null)), live.filter { $0.attributes["lang"] == .null }.count)
        try db.close()
    }
}
