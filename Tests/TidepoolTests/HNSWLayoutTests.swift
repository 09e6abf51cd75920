import XCTest
@testable import Tidepool

/// The stored graph layouts: version 2 (compressed sparse rows at level 0, 3- or 4-byte ids,
/// 4- or 8-byte offsets) holds exactly the builder's links and searches exactly as version 1
/// does; damage to it is reported with the file and offset.
final class HNSWLayoutTests: XCTestCase {
    private struct AdmitAll: RowAdmission {
        func admits(_ row: UInt32) -> Bool { true }
        func allowed(_ row: UInt32) -> Bool { true }
    }
    private struct AdmitEven: RowAdmission {
        func admits(_ row: UInt32) -> Bool { row % 2 == 0 }
        func allowed(_ row: UInt32) -> Bool { row % 2 == 0 }
    }

    private let n = 3000, dim = 12

    private func withBuiltGraph(_ body: (HNSWBuilder, [Float]) throws -> Void) throws {
        let vectors = randomVectors(n, dim, seed: 21).flatMap { $0 }
        try vectors.withUnsafeBufferPointer { vp in
            let builder = HNSWBuilder(vectors: vp.baseAddress!, count: n, dimension: dim, metric: .l2,
                                      parameters: HNSWParameters(m: 8, efConstruction: 60))
            builder.build(threads: 2)
            try body(builder, vectors)
        }
    }

    private func search<A: RowAdmission>(_ g: HNSWGraphView, _ vectors: [Float], _ q: [Float], twoHop: Bool, admit: A) -> [UInt32] {
        let scratch = SearchScratch()
        var out: [(Float, UInt32)] = []
        vectors.withUnsafeBufferPointer { vp in
            q.withUnsafeBufferPointer { qp in
                let d = F32RowDistance(query: qp.baseAddress!, vectors: vp.baseAddress!, distance: DistanceFunction(metric: .l2, dimension: dim))
                _ = hnswSearch(g, entryPoint: g.entryPoint, maxLevel: g.maxLevel, count: g.count, distance: d, k: 10, ef: 40,
                               admit: admit, twoHop: twoHop, scratch: scratch) { out.append(($0, $1)) }
            }
        }
        return out.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.1)
    }

    func testCompactLayoutHoldsTheSameGraphAndSearchesTheSame() throws {
        try withBuiltGraph { builder, vectors in
            let fixed = builder.fixedLayoutBlock()
            let v1 = try HNSWGraphView(bytes: fixed, file: "v1", fileOffset: 0, expectedCount: n)
            XCTAssertEqual(v1.version, 1)
            let queries = randomVectors(20, dim, seed: 22)
            for (ib, ob) in [(3, 4), (4, 4), (3, 8), (4, 8)] {
                let bytes = builder.stored(idBytes: ib, offsetBytes: ob)
                try bytes.withUnsafeBytes { raw in
                    let v2 = try HNSWGraphView(bytes: raw, file: "v2", fileOffset: 0, expectedCount: n)
                    XCTAssertEqual(v2.version, 2)
                    XCTAssertEqual(v2.idBytes, ib)
                    XCTAssertEqual(v2.offsetBytes, ob)
                    XCTAssertEqual(v2.entryPoint, v1.entryPoint)
                    XCTAssertEqual(v2.maxLevel, v1.maxLevel)
                    XCTAssertEqual(v2.meanDegree, v1.meanDegree)
                    XCTAssertLessThan(v2.meanDegree, Double(v1.m0), "the heuristic leaves slots empty")
                    let links = Int((v2.meanDegree * Double(n)).rounded())
                    XCTAssertEqual(raw.count, HNSWCompactLayout(count: n, upperNodes: v2.upperNodes, upperWords: v2.upperWords, links: links, idBytes: ib, offsetBytes: ob).totalBytes)
                    if ib == 3 && ob == 4 { XCTAssertLessThan(raw.count, fixed.count * 3 / 4, "3-byte ids of partly filled lists") }
                    for node in 0..<UInt32(n) {
                        let a = v1.level0Links(node), b = v2.level0Links(node)
                        XCTAssertEqual(a.count, b.count)
                        XCTAssertEqual((0..<a.count).map { a[$0] }, (0..<b.count).map { b[$0] }, "node \(node)")
                        XCTAssertEqual(v1.level(node), v2.level(node))
                        for level in stride(from: v1.level(node), to: 0, by: -1) {
                            let l1 = v1.withLinks(node, level: level) { Array(UnsafeBufferPointer(start: $0, count: Int($0[0]) + 1)) }
                            let l2 = v2.withLinks(node, level: level) { Array(UnsafeBufferPointer(start: $0, count: Int($0[0]) + 1)) }
                            XCTAssertEqual(l1, l2)
                        }
                    }
                    for q in queries {
                        XCTAssertEqual(search(v1, vectors, q, twoHop: false, admit: AdmitAll()), search(v2, vectors, q, twoHop: false, admit: AdmitAll()))
                        XCTAssertEqual(search(v1, vectors, q, twoHop: true, admit: AdmitEven()), search(v2, vectors, q, twoHop: true, admit: AdmitEven()))
                    }
                }
            }
            // The search finds the true neighbours (the layouts agree on a good graph, not a broken one).
            var hits = 0
            for q in queries {
                let exact = (0..<n).map { r in (zip(q, vectors[(r * dim)..<((r + 1) * dim)]).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, UInt32(r)) }
                    .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.prefix(10).map(\.1)
                hits += Set(exact).intersection(search(v1, vectors, q, twoHop: false, admit: AdmitAll())).count
            }
            XCTAssertGreaterThanOrEqual(Double(hits) / Double(10 * queries.count), 0.9)
        }
    }

    func testDamagedCompactLayoutIsReportedWithItsOffset() throws {
        try withBuiltGraph { builder, _ in
            let good = builder.stored(idBytes: 3, offsetBytes: 4)
            let links = good.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 40, as: UInt64.self)) }
            let header = { (at: Int) in good.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) } }
            let layout = HNSWCompactLayout(count: n, upperNodes: header(56), upperWords: header(32), links: links, idBytes: 3, offsetBytes: 4)
            XCTAssertGreaterThan(layout.upperNodes, 1)
            func expectCorrupt(_ what: String, at expected: Int? = nil, _ damage: (inout [UInt8]) -> Void) {
                var bytes = good
                damage(&bytes)
                let result = bytes.withUnsafeBytes { raw in
                    Result { try HNSWGraphView(bytes: raw, file: "seg.tps", fileOffset: 1000, expectedCount: n) }
                }
                guard case .failure(let e) = result else { return XCTFail("\(what): accepted") }
                guard case .corrupt(let file, let offset, _) = e as? TidepoolError else { return XCTFail("\(what): \(e)") }
                XCTAssertEqual(file, "seg.tps", what)
                if let expected { XCTAssertEqual(offset, 1000 + expected, what) }
            }
            func putU32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) { for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
            func u32(_ at: Int) -> UInt32 { good.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) } }
            expectCorrupt("id width 2") { putU32(&$0, 48, 2) }
            expectCorrupt("offset width 5") { putU32(&$0, 52, 5) }
            expectCorrupt("upper node count above nodes") { $0[60] = 1 }
            expectCorrupt("link count above nodes × m0") { putU32(&$0, 40, UInt32(n * 16 + 1)) }
            expectCorrupt("truncated") { $0.removeLast(64) }
            // An id past the last node: the first link of the array.
            expectCorrupt("link out of range", at: layout.level0LinksOffset) { $0[layout.level0LinksOffset + 2] = 0xFF }
            // Node 5's end offset below its start.
            let o5 = layout.level0OffsetsOffset + 4 * 5
            expectCorrupt("falling offsets", at: layout.level0OffsetsOffset + 4 * 6) { putU32(&$0, o5 + 4, u32(o5) &- 1) }
            // Node 5 given more than m0 links.
            expectCorrupt("too many links", at: layout.level0OffsetsOffset + 4 * 6) { putU32(&$0, o5 + 4, u32(o5) + 17) }
            // Upper nodes: out of order; a list start that is not a whole number of levels; a level-1
            // link to a node with no level 1 (the descent would read a list it does not have).
            expectCorrupt("upper nodes out of order", at: layout.upperIDsOffset + 4) { putU32(&$0, layout.upperIDsOffset + 4, u32(layout.upperIDsOffset)) }
            expectCorrupt("upper start not whole levels", at: layout.upperStartsOffset + 4) { putU32(&$0, layout.upperStartsOffset + 4, u32(layout.upperStartsOffset + 4) + 1) }
            let firstUpper = layout.upperOffset  // node upperIDs[0], level 1: count, then links
            XCTAssertGreaterThan(u32(firstUpper), 0)
            let lowNode = (0..<UInt32(n)).first { id in !(0..<layout.upperNodes).contains { u32(layout.upperIDsOffset + 4 * $0) == id } }!
            expectCorrupt("upper link to a level-0 node", at: firstUpper + 4) { putU32(&$0, firstUpper + 4, lowNode) }
            expectCorrupt("first offset not 0", at: layout.level0OffsetsOffset) { putU32(&$0, layout.level0OffsetsOffset, 1) }
            expectCorrupt("last offset differs from the link count", at: layout.level0OffsetsOffset + 4 * n) { putU32(&$0, layout.level0OffsetsOffset + 4 * n, UInt32(links - 1)) }
        }
    }
}
