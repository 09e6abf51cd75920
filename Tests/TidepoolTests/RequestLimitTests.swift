import Foundation
import XCTest

@testable import Tidepool

/// Bounds on the work one request can ask for: filter size, long `in` lists, text query length,
/// and deadlines that stop a read part-way.
final class RequestLimitTests: XCTestCase {
    func collection(_ dir: TempDir, rows: Int = 3000) throws -> (Database, Tidepool.Collection, [[String: AttributeValue]]) {
        let db = try Database(path: dir.path)
        let c = try db.createCollection(
            "c", dimension: 4, metric: .l2, config: CollectionConfig(text: TextIndexConfig(fields: ["body"])))
        var rng = SplitMix64(seed: 7)
        var attrs: [[String: AttributeValue]] = []
        let vectors = randomVectors(rows, 4, seed: 8)
        var docs: [Document] = []
        for i in 0..<rows {
            var a: [String: AttributeValue] = [
                "n": .int(Int64(rng.next() % 500)), "x": .float(Double(rng.next() % 300)),
                "tag": .stringArray(["t\(rng.next() % 50)", "t\(rng.next() % 50)"]), "body": .string("word\(i % 7) common"),
            ]
            if rng.next() % 5 == 0 { a["n"] = nil }
            attrs.append(a)
            docs.append(Document(id: .uint(UInt64(i)), vector: vectors[i], attributes: a))
        }
        try c.upsert(docs)
        return (db, c, attrs)
    }

    func testFilterSizeDepthAndListsAreBounded() throws {
        let dir = TempDir()
        let (db, c, _) = try collection(dir, rows: 10)
        defer { try? db.close() }
        var deep = Filter.eq("n", .int(1))
        for _ in 0..<Filter.maxDepth { deep = .not(deep) }
        let wide = Filter.or((0...Filter.maxNodes).map { .eq("n", .int(Int64($0))) })
        let long = Filter.in("n", (0...Filter.maxListValues).map { .int(Int64($0)) })
        for (f, what) in [(deep, "nested deeper"), (wide, "conditions"), (long, "values")] {
            XCTAssertThrowsError(try c.count(filter: f)) { e in
                guard case .invalidArgument(let m) = e as? TidepoolError else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains(what), m)
            }
        }
        // Just inside every limit is fine.
        var ok = Filter.eq("n", .int(1))
        for _ in 0..<(Filter.maxDepth - 1) { ok = .not(ok) }
        XCTAssertNoThrow(try c.count(filter: ok))
        XCTAssertNoThrow(try c.count(filter: .in("n", (0..<Filter.maxListValues).map { .int(Int64($0)) })))
    }

    /// Long `in`/`notIn` lists go through hash sets on in-memory rows; the answer is the reference
    /// evaluator's, integers matching equal floats and string arrays matching any element.
    func testLongListsAgreeWithTheReferenceEvaluator() throws {
        let dir = TempDir()
        let (db, c, attrs) = try collection(dir)
        defer { try? db.close() }
        var rng = SplitMix64(seed: 11)
        for round in 0..<30 {
            let count = 9 + Int(rng.next() % 300)
            let filter: Filter
            switch round % 4 {
            case 0: filter = .in("n", (0..<count).map { _ in .int(Int64(rng.next() % 600)) })
            case 1: filter = .notIn("n", (0..<count).map { _ in .int(Int64(rng.next() % 600)) })
            case 2:
                filter = .in(
                    "x", (0..<count).map { _ in rng.next() % 2 == 0 ? .int(Int64(rng.next() % 300)) : .float(Double(rng.next() % 300)) })
            default: filter = .in("tag", (0..<count).map { _ in .string("t\(rng.next() % 80)") })
            }
            let validated = try filter.validated(against: c.schema, collection: "c")
            let expected = attrs.filter { validated.matches($0) }.count
            XCTAssertEqual(try c.count(filter: filter), expected, "round \(round)")
        }
    }

    func testAPassedDeadlineStopsReadsWithAClearError() throws {
        let dir = TempDir()
        let (db, c, _) = try collection(dir)
        defer { try? db.close() }
        let passed = Deadline(.now - .seconds(1))
        let f = Filter.in("n", (0..<100).map { .int(Int64($0)) })
        let calls: [(String, () throws -> Void)] = [
            ("search", { _ = try c.search(vector: [0, 0, 0, 0], k: 5, options: SearchOptions(deadline: passed)) }),
            ("filtered search", { _ = try c.search(vector: [0, 0, 0, 0], k: 5, options: SearchOptions(filter: f, deadline: passed)) }),
            ("text", { _ = try c.textSearch("common", k: 5, options: TextSearchOptions(deadline: passed)) }),
            ("hybrid", { _ = try c.hybridSearch(vector: [0, 0, 0, 0], text: "common", k: 5, options: HybridOptions(deadline: passed)) }),
            ("count", { _ = try c.count(filter: f, deadline: passed) }),
            ("scan", { _ = try c.scan(filter: f, deadline: passed) }),
            ("delete", { _ = try c.delete(filter: f, deadline: passed) }),
        ]
        for (what, call) in calls {
            XCTAssertThrowsError(try call(), what) { e in
                guard case .deadlineExceeded = e as? TidepoolError else { return XCTFail("\(what): \(e)") }
            }
        }
        XCTAssertEqual(c.count, 3000, "a delete past its deadline deleted nothing")
        let later = Deadline.after(.seconds(60))
        XCTAssertEqual(try c.search(vector: [0, 0, 0, 0], k: 5, options: SearchOptions(filter: f, deadline: later)).count, 5)
    }

    func testTextQueriesHaveBoundedTerms() throws {
        let dir = TempDir()
        let (db, c, _) = try collection(dir, rows: 10)
        defer { try? db.close() }
        let long = (0...Collection.maxTextQueryTerms).map { "w\($0)" }.joined(separator: " ")
        XCTAssertThrowsError(try c.textSearch(long, k: 5)) { e in
            guard case .invalidArgument(let m) = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("at most"), m)
        }
        let ok = (1..<Collection.maxTextQueryTerms).map { "w\($0)" }.joined(separator: " ") + " common"
        XCTAssertEqual(try c.textSearch(ok, k: 5).count, 5)
    }
}
