import Foundation
import Tidepool
import XCTest

/// The cold tier and the memory budget that chooses it (docs/COLD_TIER.md), through the public API.
final class ColdTierTests: XCTestCase {
    let dim = 32

    /// 6,000 clustered rows × 32 dims = 768 KB of f32: over half of a 512 KB budget, and more than it holds.
    func makeDatabase(_ dir: TempDir, budget: Int?) throws -> (Database, Collection, [[Float]]) {
        let base = clusteredVectors(6000, dim, clusters: 40, seed: 91)
        let db = try Database(path: dir.path, options: DatabaseOptions(memoryBudget: budget))
        let c = try db.createCollection("c", dimension: dim, metric: .l2)
        try c.upsert(base.enumerated().map { Document(id: .uint(UInt64($0.offset)), vector: $0.element) })
        try c.flush()
        return (db, c, base)
    }

    func testABudgetPlansIVFPQAndSearchesItColdWithTheSameAnswersAsWarm() throws {
        let dir = TempDir()
        let (db, c, base) = try makeDatabase(dir, budget: 512 << 10)
        let seg = try XCTUnwrap(c.info().segments.first)
        XCTAssertEqual(seg.index, "ivf", "the planner builds a segment over half the budget as IVF")
        XCTAssertEqual(seg.tier, .cold)
        XCTAssertLessThan(seg.tierBytes, seg.vectorBytes, "cold keeps the index, not the f32 rows")
        let queries = clusteredVectors(60, dim, clusters: 40, seed: 92)
        let options = SearchOptions(rerank: 100, nprobe: 64)
        let cold = try queries.map { try c.search(vector: $0, k: 10, options: options) }
        let coldRecall = try recall(c, queries, exactTopK(base, queries, metric: .l2), options: options)
        XCTAssertGreaterThanOrEqual(coldRecall, 0.9)
        try db.close()

        // The same files without a budget: warm, and every answer identical.
        let warmDB = try Database(path: dir.path)
        defer { try? warmDB.close() }
        let w = try warmDB.collection("c")
        XCTAssertEqual(w.info().segments.first?.tier, .warm)
        for (q, expected) in zip(queries, cold) {
            let got = try w.search(vector: q, k: 10, options: options)
            XCTAssertEqual(got.map(\.id), expected.map(\.id))
            XCTAssertEqual(got.map(\.distance), expected.map(\.distance))
        }
    }

    func testABudgetThatHoldsEverythingKeepsSegmentsHotOrWarm() throws {
        let dir = TempDir()
        let (db, c, _) = try makeDatabase(dir, budget: 64 << 20)
        defer { try? db.close() }
        let seg = try XCTUnwrap(c.info().segments.first)
        XCTAssertEqual(seg.index, "hnsw")
        XCTAssertEqual(seg.tier, .hot)
    }

    func testAnIVFSegmentGoesColdOnlyWhenItDoesNotFit() throws {
        let dir = TempDir()
        do {
            let db = try Database(path: dir.path)
            let c = try db.createCollection(
                "c", dimension: dim, metric: .l2, config: CollectionConfig(quantization: .pq, index: .ivf))
            try c.upsert(
                clusteredVectors(6000, dim, clusters: 40, seed: 93).enumerated().map {
                    Document(id: .uint(UInt64($0.offset)), vector: $0.element)
                })
            try c.flush()
            try db.close()
        }
        for (budget, tier) in [(nil, SegmentTier.warm), (64 << 20, .warm), (100 << 10, .cold)] as [(Int?, SegmentTier)] {
            let db = try Database(path: dir.path, options: DatabaseOptions(readOnly: true, memoryBudget: budget))
            XCTAssertEqual(try db.collection("c").info().segments.first?.tier, tier, "budget \(String(describing: budget))")
            try db.close()
        }
    }

    func testCompactionMovesAGraphSegmentToTheColdTierUnderABudget() throws {
        let dir = TempDir()
        do {
            let (db, c, _) = try makeDatabase(dir, budget: nil)
            XCTAssertEqual(c.info().segments.first?.index, "hnsw")
            try db.close()
        }
        let db = try Database(path: dir.path, options: DatabaseOptions(memoryBudget: 512 << 10))
        defer { try? db.close() }
        let c = try db.collection("c")
        try c.compact()
        let seg = try XCTUnwrap(c.info().segments.first)
        XCTAssertEqual(seg.index, "ivf")
        XCTAssertEqual(seg.tier, .cold)
        XCTAssertEqual(c.count, 6000)
    }

    func testADamagedRowInAColdSegmentIsReportedWithFileAndOffset() throws {
        let dir = TempDir()
        do {
            let (db, _, _) = try makeDatabase(dir, budget: 512 << 10)
            try db.close()
        }
        // A byte inside the f32 rows (they follow the segment header).
        let file = try flipSegmentByte(dir.path, collection: "c", at: { _ in 4096 + 17 })
        XCTAssertThrowsError(try Database(path: dir.path, options: DatabaseOptions(memoryBudget: 512 << 10)).collection("c")) { e in
            guard case TidepoolError.corrupt(let f, _, _) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(f.contains(file), f)
        }
        XCTAssertFalse(Database.verify(path: dir.path).isEmpty)
    }
}

/// `tidepool bench --memory-limit`: the search runs in a real memory cgroup (root only).
final class MemoryLimitedBenchTests: XCTestCase {
    func testTheColdTierAnswersWithinASmallCgroupLimit() throws {
        guard getuid() == 0, FileManager.default.isWritableFile(atPath: "/sys/fs/cgroup/memory") else {
            throw XCTSkip("needs root and the cgroup v1 memory controller at /sys/fs/cgroup/memory")
        }
        let dir = TempDir()
        let dim = 64, n = 20000, nq = 50
        let base = clusteredVectors(n, dim, clusters: 64, seed: 95)
        let queries = clusteredVectors(nq, dim, clusters: 64, seed: 96)
        try VectorFile.writeFvecs(VectorMatrix(rows: n, dimension: dim, values: base.flatMap { $0 }), to: dir.path + "/base.fvecs")
        try VectorFile.writeFvecs(VectorMatrix(rows: nq, dimension: dim, values: queries.flatMap { $0 }), to: dir.path + "/q.fvecs")
        var gt = Data()
        for q in queries {
            var row: [Int32] = [10] + bruteForce(base, q, k: 10, metric: .l2).map { Int32($0) }
            gt.append(Data(bytes: &row, count: row.count * 4))
        }
        try gt.write(to: URL(fileURLWithPath: dir.path + "/gt.ivecs"))
        let limitMB = 96
        let (status, _, err) = try runTidepool([
            "bench", "--base", dir.path + "/base.fvecs", "--query", dir.path + "/q.fvecs", "--gt", dir.path + "/gt.ivecs",
            "--metric", "l2", "--index", "ivf", "--quantization", "pq", "--nprobes", "32", "--rerank", "100",
            "--memory-limit", String(limitMB), "--memory-budget", "1", "--skip-background-ingest", "--work-dir", dir.path,
            "--json", dir.path + "/report.json",
        ])
        XCTAssertEqual(status, 0, err)
        let report = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + "/report.json"))) as? [String: Any])
        let entry = try XCTUnwrap((report["peers"] as? [[String: Any]])?.first)
        XCTAssertEqual(entry["memory_limit_applied"] as? Bool, true, "\(entry)")
        let row = try XCTUnwrap((entry["sweep"] as? [[String: Any]])?.first)
        XCTAssertEqual(row["tiers"] as? [String], ["cold"])
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(row["recall"] as? Double), 0.9)
        let peak = try XCTUnwrap(row["cgroup_peak_bytes"] as? Int)
        XCTAssertGreaterThan(peak, 0)
        XCTAssertLessThanOrEqual(peak, limitMB << 20)
    }
}

extension ColdTierTests {
    /// With the default depth a cold re-rank reads in rounds and may stop early; its recall
    /// against exact ground truth stays close to reading every candidate.
    func testTheDefaultColdRerankKeepsRecall() throws {
        let dir = TempDir()
        let (db, c, base) = try makeDatabase(dir, budget: 512 << 10)
        defer { try? db.close() }
        XCTAssertEqual(c.info().segments.first?.tier, .cold)
        let queries = clusteredVectors(60, dim, clusters: 40, seed: 97)
        let truth = exactTopK(base, queries, metric: .l2)
        let rounds = try recall(c, queries, truth, options: SearchOptions(nprobe: 64))
        let all = try recall(c, queries, truth, options: SearchOptions(rerank: 120, nprobe: 64))
        XCTAssertGreaterThanOrEqual(rounds, 0.9)
        XCTAssertGreaterThanOrEqual(rounds, all - 0.05, "rounds \(rounds), every candidate \(all)")
    }
}
