import Foundation
import TidepoolKernels
import XCTest

@testable import Tidepool

/// SQ8: the quantizer's error bounds, and collections whose graph walks read SQ8 codes.
final class QuantizationTests: XCTestCase {
    func testSQ8RoundTripErrorIsAtMostHalfAStepAndEstimatesStayWithinTheirBound() {
        let dim = 48
        let base = clusteredVectors(2000, dim, clusters: 20, seed: 5)
        var flat = base.flatMap { $0 }
        flat[7] = 40  // an outlier dimension widens its own range only
        let q = flat.withUnsafeBufferPointer { ScalarQuantizer.train($0.baseAddress!, count: base.count, dimension: dim) }
        var code = [UInt8](repeating: 0, count: dim)
        var back = [Float](repeating: 0, count: dim)
        for r in 0..<base.count {
            flat.withUnsafeBufferPointer { p in q.encode(p.baseAddress! + r * dim, into: &code) }
            code.withUnsafeBufferPointer { q.decode($0.baseAddress!, into: &back) }
            for d in 0..<dim {
                XCTAssertLessThanOrEqual(abs(back[d] - flat[r * dim + d]), q.step[d] / 2 * 1.0001 + 1e-6, "row \(r) dim \(d)")
            }
        }
        assertSQ8EstimatesWithinBound(
            flat, count: base.count, dimension: dim,
            queries: clusteredVectors(20, dim, clusters: 20, seed: 6), rowStride: 7)
    }

    func testSQ8CollectionKeepsRecallWithRerankingAndPersists() throws {
        let dim = 32, n = 6000
        let base = clusteredVectors(n, dim, clusters: 40, seed: 11)
        let queries = clusteredVectors(60, dim, clusters: 40, seed: 12)
        let dir = TempDir()
        // One build thread: the graph, and so the recall, is the same on every run.
        var db: Database? = try Database(path: dir.path, options: DatabaseOptions(buildThreads: 1))
        let c = try db!.createCollection(
            "v", dimension: dim, metric: .cosine,
            config: CollectionConfig(minRowsForGraph: 1000, quantization: .sq8))
        try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
        try c.flush()
        let info = c.info()
        XCTAssertEqual(info.segments.count, 1)
        XCTAssertEqual(info.segments[0].codeBytes, ScalarQuantizer.codesOffset(dimension: dim) + n * dim)
        XCTAssertEqual(info.segments[0].searchResidentBytes, info.segments[0].graphBytes + info.segments[0].codeBytes)
        XCTAssertLessThan(info.segments[0].searchResidentBytes, info.segments[0].graphBytes + info.segments[0].vectorBytes)

        let truth = exactTopK(base, queries, metric: .cosine)
        func recallAt10(_ c: Collection, rerank: Int? = nil) throws -> Double {
            try recall(c, queries, truth, options: SearchOptions(rerank: rerank))
        }
        XCTAssertGreaterThanOrEqual(try recallAt10(c), 0.95, "recall@10 of the SQ8 walk with default re-ranking")
        let r = try c.searchWithCost(vector: queries[0], k: 10)
        XCTAssertGreaterThan(r.cost.quantizedDistances, 100, "the walk reads codes")
        XCTAssertEqual(r.cost.distances, 20, "only the re-ranked candidates (2·k, at least 20) get f32 distances")
        XCTAssertEqual(try c.searchWithCost(vector: queries[0], k: 10, options: SearchOptions(rerank: 50)).cost.distances, 50)
        // Reported distances are exact ones (re-ranked), not estimates.
        let top = try XCTUnwrap(r.hits.first)
        guard case .uint(let id) = top.id else { return XCTFail() }
        let exact = Float(referenceDistance(base[Int(id)], queries[0], .cosine))
        XCTAssertEqual(top.distance, exact, accuracy: 1e-4)
        XCTAssertThrowsError(try c.search(vector: queries[0], k: 10, options: SearchOptions(rerank: 0))) {
            XCTAssertTrue("\($0)".contains("rerank must be in"), "\($0)")
        }
        try db!.close()
        db = nil

        let reopened = try Database(path: dir.path)
        let c2 = try reopened.collection("v")
        XCTAssertEqual(c2.config.quantization, .sq8, "the setting is persisted with the collection")
        XCTAssertGreaterThanOrEqual(try recallAt10(c2), 0.95, "after reopening")
        XCTAssertGreaterThanOrEqual(try recallAt10(c2, rerank: 200), try recallAt10(c2, rerank: 10) - 0.02)
        try reopened.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])

        // A flipped byte in the codes is found by verify, naming the file and the offset.
        // Inside the last section before the table: the codes.
        let file = try flipSegmentByte(dir.path, collection: "v") { $0 - 32 - 64 * 4 - n * dim / 2 }
        assertVerifyReportsOneDamagedSection(dir.path, file: file, section: 6)
    }

    func testChangingQuantizationRebuildsSegmentsAndPersists() throws {
        let dim = 16, n = 5000
        let base = clusteredVectors(n, dim, clusters: 30, seed: 21)
        let queries = clusteredVectors(40, dim, clusters: 30, seed: 22)
        let dir = TempDir()
        var db: Database? = try Database(path: dir.path, options: DatabaseOptions(buildThreads: 1))
        let c = try db!.createCollection("v", dimension: dim, metric: .l2, config: CollectionConfig(minRowsForGraph: 1000))
        try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
        try c.flush()
        XCTAssertEqual(c.info().segments.map(\.codeBytes), [0])

        XCTAssertThrowsError(try c.updateIndexSettings { $0.text = TextIndexConfig(fields: ["t"]) }) {
            XCTAssertTrue("\($0)".contains("only index settings"), "\($0)")
        }
        XCTAssertThrowsError(try c.updateIndexSettings { $0.hnsw.m = 1 })
        XCTAssertEqual(c.config.quantization, .none, "a refused change changes nothing")

        try c.updateIndexSettings { $0.quantization = .sq8 }
        try c.flush()  // waits for the background rebuild
        XCTAssertEqual(c.info().segments.count, 1)
        XCTAssertGreaterThan(c.info().segments[0].codeBytes, 0)
        XCTAssertEqual(c.count, n)
        XCTAssertGreaterThanOrEqual(try recall(c, queries, exactTopK(base, queries, metric: .l2)), 0.95)
        XCTAssertGreaterThan(try c.searchWithCost(vector: queries[0], k: 10).cost.quantizedDistances, 0)
        try db!.close()
        db = nil

        let reopened = try Database(path: dir.path, options: DatabaseOptions(buildThreads: 1))
        let c2 = try reopened.collection("v")
        XCTAssertEqual(c2.config.quantization, .sq8)
        XCTAssertGreaterThan(c2.info().segments[0].codeBytes, 0)
        // And back: the codes go away with the next rebuild.
        try c2.updateIndexSettings { $0.quantization = .none }
        try c2.flush()
        XCTAssertEqual(c2.info().segments.map(\.codeBytes), [0])
        XCTAssertEqual(c2.count, n)
        try reopened.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
    }

    func testF16CollectionMatchesFullPrecisionRecallAndSwitchesFromSQ8() throws {
        let dim = 24, n = 5000
        let base = clusteredVectors(n, dim, clusters: 30, seed: 31)
        let queries = clusteredVectors(40, dim, clusters: 30, seed: 32)
        let dir = TempDir()
        let db = try Database(path: dir.path, options: DatabaseOptions(buildThreads: 1))
        let c = try db.createCollection(
            "v", dimension: dim, metric: .l2,
            config: CollectionConfig(minRowsForGraph: 1000, quantization: .f16))
        try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
        try c.flush()
        let seg = try XCTUnwrap(c.info().segments.first)
        XCTAssertEqual(seg.codeBytes, 64 + n * dim * 2, "half the f32 bytes, plus the section header")
        let truth = exactTopK(base, queries, metric: .l2)
        XCTAssertGreaterThanOrEqual(try recall(c, queries, truth), 0.95)
        let r = try c.searchWithCost(vector: queries[0], k: 10)
        XCTAssertGreaterThan(r.cost.quantizedDistances, 0)
        // Reported distances are the exact f32 ones.
        guard case .uint(let id) = r.hits[0].id else { return XCTFail() }
        XCTAssertEqual(r.hits[0].distance, Float(referenceDistance(base[Int(id)], queries[0], .l2)), accuracy: 1e-4)

        try c.updateIndexSettings { $0.quantization = .sq8 }
        try c.flush()
        XCTAssertEqual(c.info().segments.first?.codeBytes, ScalarQuantizer.codesOffset(dimension: dim) + n * dim)
        XCTAssertGreaterThanOrEqual(try recall(c, queries, truth), 0.9)
        try db.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
    }
}

/// Estimated SQ8 distances (what the graph walk ranks by) against exact ones, for every metric:
/// the error of q·x̂ is at most Σ|q_d|·step_d/2, and of |q − x̂|² correspondingly.
func assertSQ8EstimatesWithinBound(
    _ flat: [Float], count: Int, dimension dim: Int, queries: [[Float]], rowStride: Int,
    file: StaticString = #filePath, line: UInt = #line
) {
    let q = flat.withUnsafeBufferPointer { ScalarQuantizer.train($0.baseAddress!, count: count, dimension: dim) }
    let section = flat.withUnsafeBufferPointer { ScalarQuantizer.section($0.baseAddress!, count: count, dimension: dim) }
    for metric in [Metric.l2, .innerProduct] {
        let exact = DistanceFunction(metric: metric, dimension: dim)
        for qv in queries {
            let scratch = SearchScratch()
            let prepared = qv.withUnsafeBufferPointer {
                SQ8Query(query: $0.baseAddress!, quantizer: q, metric: metric, buffers: scratch.sq8)
            }
            section.withUnsafeBytes { raw in
                let codes = (raw.baseAddress! + ScalarQuantizer.codesOffset(dimension: dim)).assumingMemoryBound(to: UInt8.self)
                let est = SQ8RowDistance(query: prepared, codes: codes, kernels: tp_sq8_kernels())
                for r in stride(from: 0, to: count, by: rowStride) {
                    let e = qv.withUnsafeBufferPointer { qp in
                        flat.withUnsafeBufferPointer { exact(qp.baseAddress!, $0.baseAddress! + r * dim) }
                    }
                    var bound: Float = 0
                    for d in 0..<dim {
                        let x = flat[r * dim + d]
                        bound += metric == .l2 ? (2 * abs(qv[d] - x) + q.step[d] / 2) * q.step[d] / 2 : abs(qv[d]) * q.step[d] / 2
                    }
                    XCTAssertLessThanOrEqual(abs(est(UInt32(r)) - e), bound * 1.001 + 1e-4, "\(metric) row \(r)", file: file, line: line)
                }
            }
        }
    }
}
