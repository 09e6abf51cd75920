import XCTest

@testable import Tidepool

/// The descent through the upper levels keeps a beam (`hnswDescend`): its seeds are distinct
/// level-1 nodes, ascending from the best, never more than the width; they are at least as close
/// as the paper's greedy descent gets; and the walk they start finds the exact neighbours on
/// clustered data, where a greedy entry lands in the wrong cluster.
final class HNSWDescentTests: XCTestCase {
    private struct AdmitEvery: RowAdmission {
        func admits(_ row: UInt32) -> Bool { true }
        func allowed(_ row: UInt32) -> Bool { true }
    }

    private let n = 8000, dim = 16

    private func withClusteredGraph(_ body: (HNSWBuilder, [Float]) throws -> Void) throws {
        let vectors = clusteredVectors(n, dim, clusters: 80, seed: 31).flatMap { $0 }
        try vectors.withUnsafeBufferPointer { vp in
            let builder = try HNSWBuilder(
                vectors: vp.baseAddress!, count: n, dimension: dim, metric: .l2,
                parameters: HNSWParameters(m: 8, efConstruction: 60))
            builder.build(threads: 1)
            try body(builder, vectors)
        }
    }

    private func descend(
        _ g: HNSWBuilder, _ d: F32RowDistance, width: Int, scratch: SearchScratch
    ) -> [Neighbor] {
        let (entry, top) = g.entry()
        let seeds = scratch.upperSeeds.reserve(max(width, 1))
        var computed = 0
        let found = hnswDescend(
            g, entryPoint: entry, maxLevel: top, count: n, distance: d, width: width, scratch: scratch, seeds: seeds,
            computed: &computed)
        XCTAssertGreaterThan(computed, 0)
        return (0..<found).map { seeds[$0] }
    }

    func testSeedsAreDistinctLevelOneNodesNoFartherThanTheGreedyEntry() throws {
        try withClusteredGraph { g, vectors in
            XCTAssertGreaterThanOrEqual(g.entry().1, 2, "the test needs levels above 1")
            let queries = clusteredVectors(200, dim, clusters: 80, seed: 32)
            let scratch = SearchScratch()
            var noWorse = 0
            for q in queries {
                try vectors.withUnsafeBufferPointer { vp in
                    try q.withUnsafeBufferPointer { qp in
                        let d = F32RowDistance(
                            query: qp.baseAddress!, vectors: vp.baseAddress!,
                            distance: DistanceFunction(metric: .l2, dimension: dim))
                        let greedy = descend(g, d, width: 1, scratch: scratch)
                        XCTAssertEqual(greedy.count, 1)
                        let beam = descend(g, d, width: 12, scratch: scratch)
                        XCTAssertGreaterThan(beam.count, 1)
                        XCTAssertLessThanOrEqual(beam.count, 12)
                        XCTAssertEqual(Set(beam.map(\.id)).count, beam.count, "seeds are distinct")
                        for s in beam {
                            XCTAssertGreaterThanOrEqual(g.levels[Int(s.id)], 1, "a seed is a level-1 node")
                            XCTAssertEqual(s.dist, d(s.id), "a seed carries its own distance")
                        }
                        let best = try XCTUnwrap(beam.map(\.dist).min())
                        if best <= greedy[0].dist { noWorse += 1 }
                    }
                }
            }
            // A beam holds its best node, so it ends no farther than a greedy walk in nearly every case.
            XCTAssertGreaterThanOrEqual(noWorse, 196, "beam no farther than greedy in \(noWorse) of 200")
        }
    }

    func testWalkFromTheBeamFindsTheExactNeighboursOnClusteredData() throws {
        try withClusteredGraph { g, vectors in
            let queries = clusteredVectors(200, dim, clusters: 80, seed: 33)
            let rows = (0..<n).map { Array(vectors[$0 * dim..<($0 + 1) * dim]) }
            let scratch = SearchScratch()
            var hits = 0
            for q in queries {
                let exact = rows.map { referenceDistance($0, q, .l2) }
                let truth = Set(exact.indices.sorted { exact[$0] < exact[$1] }.prefix(10).map(UInt32.init))
                var found: [UInt32] = []
                vectors.withUnsafeBufferPointer { vp in
                    q.withUnsafeBufferPointer { qp in
                        let d = F32RowDistance(
                            query: qp.baseAddress!, vectors: vp.baseAddress!,
                            distance: DistanceFunction(metric: .l2, dimension: dim))
                        let (entry, top) = g.entry()
                        _ = hnswSearch(
                            g, entryPoint: entry, maxLevel: top, count: n, distance: d, k: 10, ef: 48,
                            admit: AdmitEvery(), twoHop: false, scratch: scratch
                        ) { _, row in found.append(row) }
                    }
                }
                hits += truth.intersection(found).count
            }
            let recall = Double(hits) / Double(queries.count * 10)
            XCTAssertGreaterThanOrEqual(recall, 0.92, "recall@10 at ef 48 (0.939 when written): \(recall)")
        }
    }
}
