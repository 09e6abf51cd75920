import Foundation
import Tidepool
import XCTest

/// The in-memory tier's graph: rows are indexed as they arrive, searched through the graph
/// while more arrive, and the graph becomes the flushed segment's.
final class MemTableIndexTests: XCTestCase {
    func recall(_ found: [[DocumentID]], _ truth: [[Int]], k: Int) -> Double {
        var hits = 0
        for (f, t) in zip(found, truth) {
            let ts = Set(t.prefix(k).map { DocumentID.uint(UInt64($0)) })
            hits += f.prefix(k).filter { ts.contains($0) }.count
        }
        return Double(hits) / Double(truth.count * k)
    }

    /// Waits until every in-memory row is in its memtable's graph.
    func waitUntilIndexed(_ c: Collection, timeout: TimeInterval = 120) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let info = c.info()
            if info.memtableIndexedRows == info.memtableRows { return }
            if Date() > deadline { return XCTFail("only \(info.memtableIndexedRows) of \(info.memtableRows) rows indexed") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    func testMemtableGraphKeepsRecallWhileWritingAndBecomesTheSegmentGraph() throws {
        let dim = 32, n = 6000
        let base = clusteredVectors(n, dim, clusters: 40, seed: 77)
        let queries = clusteredVectors(60, dim, clusters: 40, seed: 77).map { $0.map { $0 + 0.05 } }
        let dir = TempDir()
        var db: Database? = try Database(path: dir.path)
        // 1 MiB of 32-d vectors: 8,192 rows fit in one memtable, so nothing is flushed below.
        let config = CollectionConfig(memtableBytes: 1 << 20, minRowsForGraph: 1000)
        let c = try db!.createCollection("v", dimension: dim, metric: .l2, config: config)

        // Searches run throughout the writes, while the indexer inserts into the same graph.
        let stop = LockedCounter()
        let problems = LockedCounter()
        let reader = Thread {
            var i = 0
            while stop.value == 0 {
                let q = queries[i % queries.count]
                i += 1
                guard let hits = try? c.search(vector: q, k: 10) else { problems.add(); continue }
                let ids = hits.map(\.id)
                if Set(ids).count != ids.count || zip(hits, hits.dropFirst()).contains(where: { $0.distance > $1.distance }) {
                    problems.add()
                }
            }
            stop.add()
        }
        reader.start()
        for start in stride(from: 0, to: n, by: 250) {
            try c.upsert((start..<(start + 250)).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
        }
        stop.add()
        while stop.value < 2 { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(problems.value, 0, "searches during indexing returned duplicates or unsorted hits")

        try waitUntilIndexed(c)
        var info = c.info()
        XCTAssertEqual(info.segments.count, 0)
        XCTAssertEqual(info.memtableIndexedRows, n)
        let truth = queries.map { bruteForce(base, $0, k: 10, metric: .l2) }
        let fromGraph = try queries.map { try c.search(vector: $0, k: 10).map(\.id) }
        XCTAssertGreaterThanOrEqual(recall(fromGraph, truth, k: 10), 0.95, "recall@10 through the memtable graph")
        // The cost report tells a graph walk from a scan.
        let walked = try c.searchWithCost(vector: queries[0], k: 10).cost
        XCTAssertEqual(walked.containers, 1)
        XCTAssertEqual(walked.graphSearches, 1)
        XCTAssertEqual(walked.rowsScanned, 0)
        XCTAssertGreaterThan(walked.distances, 10)
        XCTAssertLessThan(walked.distances, n / 2, "a graph walk computes a fraction of the distances")
        let scanned = try c.searchWithCost(vector: queries[0], k: 10, options: SearchOptions(exact: true)).cost
        XCTAssertEqual(scanned.graphSearches, 0)
        XCTAssertEqual(scanned.rowsScanned, n)
        XCTAssertEqual(scanned.distances, n)
        XCTAssertGreaterThan(scanned.nanoseconds, 0)

        // Delete 5% (under the reuse threshold), flush: the graph is the segment's, dead rows are tombstones.
        let deleted = Set((0..<n).filter { $0 % 20 == 3 })
        try c.delete(ids: deleted.map { .uint(UInt64($0)) })
        try c.flush()
        info = c.info()
        XCTAssertEqual(info.segments.count, 1)
        XCTAssertEqual(info.segments.first?.rows, n)
        XCTAssertEqual(info.segments.first?.deletedRows, deleted.count)
        XCTAssertEqual(info.segments.first?.hasGraph, true)
        XCTAssertEqual(c.count, n - deleted.count)

        let liveBase = base.enumerated().map { deleted.contains($0.offset) ? [Float](repeating: 1e6, count: dim) : $0.element }
        let liveTruth = queries.map { bruteForce(liveBase, $0, k: 10, metric: .l2) }
        func check(_ c: Collection, _ label: String) throws {
            let found = try queries.map { try c.search(vector: $0, k: 10).map(\.id) }
            XCTAssertGreaterThanOrEqual(recall(found, liveTruth, k: 10), 0.95, label)
            for hits in found {
                for case .uint(let id) in hits { XCTAssertFalse(deleted.contains(Int(id)), "\(label): deleted id \(id) returned") }
            }
        }
        try check(c, "after the flush")
        try db!.close()
        db = nil

        // The tombstones were persisted with the segment.
        let reopened = try Database(path: dir.path)
        let c2 = try reopened.collection("v")
        XCTAssertEqual(c2.count, n - deleted.count)
        try check(c2, "after reopening")
        try reopened.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
    }

    func testFilteredSearchUsesTheMemtableGraphWithoutLosingMatches() throws {
        let dim = 16, n = 5000
        let base = clusteredVectors(n, dim, clusters: 20, seed: 5)
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection(
            "f", dimension: dim, metric: .l2,
            config: CollectionConfig(memtableBytes: 1 << 20, minRowsForGraph: 1000))
        try c.upsert(
            base.enumerated().map {
                Document(id: .uint(UInt64($0.offset)), vector: $0.element, attributes: ["even": .bool($0.offset % 2 == 0)])
            })
        try waitUntilIndexed(c)
        let q = base[17].map { $0 + 0.01 }
        let evenBase = base.enumerated().map { $0.offset % 2 == 0 ? $0.element : [Float](repeating: 1e6, count: dim) }
        let truth = bruteForce(evenBase, q, k: 10, metric: .l2)
        let hits = try c.search(vector: q, k: 10, options: SearchOptions(filter: .eq("even", .bool(true))))
        XCTAssertEqual(hits.count, 10)
        for case .uint(let id) in hits.map(\.id) { XCTAssertEqual(id % 2, 0) }
        XCTAssertGreaterThanOrEqual(recall([hits.map(\.id)], [truth], k: 10), 0.9)
        try db.close()
    }
}
