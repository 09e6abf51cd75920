import Foundation
import Tidepool
import XCTest

/// Recall against exact ground truth computed independently of the engine.
final class RecallTests: XCTestCase {
    func recall(_ found: [[DocumentID]], _ truth: [[Int]], k: Int) -> Double {
        var hits = 0
        for (f, t) in zip(found, truth) {
            let ts = Set(t.prefix(k).map { DocumentID.uint(UInt64($0)) })
            hits += f.prefix(k).filter { ts.contains($0) }.count
        }
        return Double(hits) / Double(truth.count * k)
    }

    func testHNSWRecallAndExactSearchOnSyntheticDataForEachMetric() throws {
        let base = clusteredVectors(6000, 32, clusters: 40, seed: 21)
        let queries = clusteredVectors(60, 32, clusters: 40, seed: 21).map { $0.map { $0 + 0.05 } }
        for metric in Metric.allCases {
            let dir = TempDir()
            let db = try Database(path: dir.path)
            let c = try db.createCollection("v", dimension: 32, metric: metric, config: CollectionConfig(minRowsForGraph: 1000))
            try c.upsert(base.enumerated().map { Document(id: .uint(UInt64($0.offset)), vector: $0.element) })
            try c.flush()
            XCTAssertTrue(c.info().segments.allSatisfy(\.hasGraph))
            let truth = queries.map { bruteForce(base, $0, k: 10, metric: metric) }
            let exact = try queries.map { try c.search(vector: $0, k: 10, options: SearchOptions(exact: true)).map(\.id) }
            XCTAssertGreaterThanOrEqual(recall(exact, truth, k: 10), 0.999, "\(metric) exact search")
            let approx = try queries.map { try c.search(vector: $0, k: 10).map(\.id) }
            let r = recall(approx, truth, k: 10)
            XCTAssertGreaterThanOrEqual(r, 0.95, "\(metric) HNSW recall@10 with default ef")
            // Distances are reported in the metric's own terms.
            let hit = try XCTUnwrap(try c.search(vector: queries[0], k: 1, options: SearchOptions(exact: true)).first)
            guard case .uint(let id) = hit.id else { return XCTFail() }
            XCTAssertEqual(Double(hit.distance), referenceDistance(base[Int(id)], queries[0], metric), accuracy: 1e-3)
            try db.close()
        }
    }

    func testRecallOnRealEmbeddingsSliceWithAndWithoutSQ8() throws {
        let n = 8000
        let base = try sharedEmbeddings(.base, count: n)
        let queries = try sharedEmbeddings(.queries, count: 50)
        let nq = 50
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("pypi", dimension: 384, metric: .cosine)
        for start in stride(from: 0, to: n, by: 1000) {
            try c.upsert((start..<(start + 1000)).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
        }
        try c.flush()
        // Exact ground truth by brute force; the vectors are unit length, so cosine order is inner-product order.
        let truth: [[Int]] = (0..<nq).map { qi in
            let q = queries[qi]
            var scored = [(Int, Float)]()
            scored.reserveCapacity(n)
            q.withUnsafeBufferPointer { qp in
                for i in 0..<n {
                    var s: Float = 0
                    base[i].withUnsafeBufferPointer { bp in for d in 0..<384 { s += qp[d] * bp[d] } }
                    scored.append((i, s))
                }
            }
            return scored.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(10).map(\.0)
        }
        let approx = try (0..<nq).map { try c.search(vector: queries[$0], k: 10).map(\.id) }
        XCTAssertGreaterThanOrEqual(recall(approx, truth, k: 10), 0.95, "recall@10 at the default ef on real embeddings")
        let exact = try (0..<nq).map { try c.search(vector: queries[$0], k: 10, options: SearchOptions(exact: true)).map(\.id) }
        XCTAssertGreaterThanOrEqual(recall(exact, truth, k: 10), 0.99)
        // The same rows with SQ8 codes: the default re-rank depth keeps recall@10 at 0.95 on real data.
        try c.updateIndexSettings { $0.quantization = .sq8 }
        try c.compact()
        XCTAssertTrue(c.info().segments.allSatisfy { $0.hasGraph && $0.codeBytes > 0 }, "rebuilt with SQ8 codes")
        let quantized = try (0..<nq).map { try c.search(vector: queries[$0], k: 10).map(\.id) }
        XCTAssertGreaterThanOrEqual(recall(quantized, truth, k: 10), 0.95, "SQ8 recall@10 at the default ef and re-rank depth")
        try db.close()
    }
}
