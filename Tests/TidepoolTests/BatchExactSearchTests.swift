import Foundation
import Tidepool
import XCTest

/// Exact search of a batch in one pass (`Collection.search(vectors:)` with `exact`), through the
/// public API: the same answers as exact searches one by one and as an independent brute force,
/// over segments and in-memory rows, with deletions, overwrites and a filter.
final class BatchExactSearchTests: XCTestCase {
    func testABatchAnswersAsExactSearchesOneByOne() throws {
        let base = clusteredVectors(3000, 24, clusters: 30, seed: 5)
        // 70 queries: more than one AVX-512 tile's 48 and not a multiple of 16.
        let queries = clusteredVectors(70, 24, clusters: 30, seed: 6).map { $0.map { $0 + 0.03 } }
        for metric in Metric.allCases {
            let dir = TempDir()
            let db = try Database(path: dir.path)
            let c = try db.createCollection("v", dimension: 24, metric: metric, config: CollectionConfig(minRowsForGraph: 500))
            let docs = base.enumerated().map {
                Document(id: .uint(UInt64($0.offset)), vector: $0.element, attributes: ["even": .bool($0.offset % 2 == 0)])
            }
            try c.upsert(Array(docs[..<2000]))
            try c.flush()
            // In memory: the rest, deletions of flushed rows, and overwrites of flushed ids.
            try c.upsert(Array(docs[2000...]))
            _ = try c.delete(ids: (0..<2000).filter { $0 % 7 == 0 }.map { .uint(UInt64($0)) })
            try c.upsert(
                (0..<50).map { Document(id: .uint(UInt64($0 * 3 + 1)), vector: base[2999 - $0], attributes: ["even": .bool(false)]) })
            var live: [UInt64: [Float]] = [:]
            for (i, v) in base.enumerated() where i >= 2000 || i % 7 != 0 { live[UInt64(i)] = v }
            for j in 0..<50 { live[UInt64(j * 3 + 1)] = base[2999 - j] }

            for filter in [nil, Filter.eq("even", .bool(true))] {
                let options = SearchOptions(exact: true, maxThreads: 2, filter: filter)
                let batch = try c.search(vectors: queries, k: 10, options: options)
                XCTAssertEqual(batch.hits.count, queries.count)
                XCTAssertEqual(batch.cost.distances, batch.cost.rowsScanned * queries.count)
                for (qi, q) in queries.enumerated() {
                    let one = try c.search(vector: q, k: 10, options: options)
                    let got = batch.hits[qi]
                    XCTAssertEqual(got.count, one.count, "\(metric) query \(qi)")
                    for (a, b) in zip(got, one) {
                        XCTAssertEqual(a.distance, b.distance, accuracy: 1e-4, "\(metric) query \(qi)")
                    }
                    // Ids agree except between distances a rounding apart.
                    let differing = Set(got.map(\.id)).symmetricDifference(one.map(\.id))
                    if !differing.isEmpty, let last = one.last {
                        for h in got + one where differing.contains(h.id) {
                            XCTAssertEqual(h.distance, last.distance, accuracy: 1e-4, "\(metric) query \(qi): \(h.id) differs")
                        }
                    }
                    // Every hit is live, matches the filter, and is at the distance its vector gives.
                    for h in got {
                        guard case .uint(let id) = h.id, let v = live[id] else { return XCTFail("\(metric): \(h.id) is not live") }
                        if filter != nil { XCTAssertTrue(id % 2 == 0 && !(id % 3 == 1 && id < 150), "\(metric): \(id) fails the filter") }
                        XCTAssertEqual(Double(h.distance), referenceDistance(v, q, metric), accuracy: 1e-3)
                    }
                }
            }
            try db.close()
        }
    }

    func testABatchWithOneBadVectorIsRefusedWhole() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("v", dimension: 4, metric: .l2)
        try c.upsert([Document(id: .uint(1), vector: [1, 2, 3, 4])])
        let exact = SearchOptions(exact: true)
        XCTAssertThrowsError(try c.search(vectors: [[1, 2, 3, 4], [1, 2, 3]], k: 1, options: exact)) { error in
            XCTAssertTrue("\(error)".contains("dimension"), "\(error)")
        }
        XCTAssertThrowsError(try c.search(vectors: [[1, 2, 3, 4], [1, .nan, 3, 4]], k: 1, options: exact))
        XCTAssertThrowsError(try c.search(vectors: [[1, 2, 3, 4]], k: 0, options: exact))
        XCTAssertEqual(try c.search(vectors: [], k: 3, options: exact).hits.count, 0)
        // k past the rows: every live row, closest first.
        let r = try c.search(vectors: [[0, 0, 0, 0]], k: 5, options: exact)
        XCTAssertEqual(r.hits[0].map(\.id), [.uint(1)])
        XCTAssertEqual(r.hits[0][0].distance, 30, accuracy: 1e-4)
        try db.close()
    }
}
