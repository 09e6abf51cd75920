import XCTest

@testable import Tidepool

/// A graph built on several threads, from rows that arrive grouped by cluster, strands nodes no
/// level-0 list links to; `linkStrandedNodes` links every one of them back in.
final class HNSWReachabilityTests: XCTestCase {
    func testStrandedNodesAreLinkedFromANeighbour() throws {
        let n = 6000, dim = 24
        let vectors = clusteredVectors(n, dim, clusters: 40, seed: 31).flatMap { $0 }
        try vectors.withUnsafeBufferPointer { vp in
            let grouped = try XCTUnwrap(RowOrder.clustered(vp.baseAddress!, count: n, dimension: dim, seed: 3, threads: 1))
            let builder = try HNSWBuilder(
                vectors: vp.baseAddress!, count: n, dimension: dim, metric: .l2, parameters: HNSWParameters())
            builder.build(threads: 2, order: grouped)
            func stranded() -> [Int] {
                var inLinks = [Int](repeating: 0, count: n)
                for v in 0..<n {
                    let list = builder.links(UInt32(v), 0)
                    for j in 0..<Int(list[0]) { inLinks[Int(list[1 + j])] += 1 }
                }
                return (0..<n).filter { inLinks[$0] == 0 && UInt32($0) != builder.entry().0 }
            }
            let before = stranded()
            XCTAssertFalse(before.isEmpty, "a parallel build over grouped rows strands nodes (the case under test)")
            XCTAssertEqual(builder.linkStrandedNodes(), 0, "every stranded node found a list")
            XCTAssertEqual(stranded(), [], "\(before.count) stranded before")
            // Each list still holds distinct nodes other than its owner, within its capacity.
            for v in 0..<n {
                let list = builder.links(UInt32(v), 0)
                let members = (0..<Int(list[0])).map { list[1 + $0] }
                XCTAssertLessThanOrEqual(members.count, builder.m0)
                XCTAssertEqual(Set(members).count, members.count)
                XCTAssertFalse(members.contains(UInt32(v)))
            }
        }
    }
}
