import XCTest

@testable import Tidepool

/// The stored graph layouts: version 2 (compressed sparse rows at level 0, 3- or 4-byte ids,
/// 4- or 8-byte offsets) holds exactly the builder's links and searches exactly as version 1
/// does; version 3 (sorted varint lists, rows renumbered in cluster order) holds the same links
/// under the renumbering; damage to either is reported with the file and offset.
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
            let builder = try HNSWBuilder(
                vectors: vp.baseAddress!, count: n, dimension: dim, metric: .l2,
                parameters: HNSWParameters(m: 8, efConstruction: 60))
            builder.build(threads: 2)
            try body(builder, vectors)
        }
    }

    /// A top-10 search of a stored graph, through the layout's own type.
    private struct Searcher<A: RowAdmission>: StoredGraphVisitor {
        let distances: F32RowDistance
        let twoHop: Bool
        let admit: A
        let scratch = SearchScratch()
        var out: [(Float, UInt32)] = []

        mutating func visit<G: StoredGraphLayout>(_ g: G) {
            var found: [(Float, UInt32)] = []
            _ = hnswSearch(
                g, entryPoint: g.entryPoint, maxLevel: g.maxLevel, count: g.count, distance: distances, k: 10, ef: 40,
                admit: admit, twoHop: twoHop, scratch: scratch
            ) { found.append(($0, $1)) }
            out = found
        }
    }

    private func search<A: RowAdmission>(_ g: StoredGraph, _ vectors: [Float], _ q: [Float], twoHop: Bool, admit: A) -> [UInt32] {
        var out: [(Float, UInt32)] = []
        vectors.withUnsafeBufferPointer { vp in
            q.withUnsafeBufferPointer { qp in
                let d = F32RowDistance(
                    query: qp.baseAddress!, vectors: vp.baseAddress!, distance: DistanceFunction(metric: .l2, dimension: dim))
                var searcher = Searcher(distances: d, twoHop: twoHop, admit: admit)
                g.visit(&searcher)
                out = searcher.out
            }
        }
        return out.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.1)
    }

    /// Damages a copy of a good graph block and expects opening it to fail as corrupt, naming
    /// the file and (when given) the block offset plus the block's 1000-byte file offset.
    private func expectCorruptGraph(_ good: [UInt8], _ what: String, at expected: Int?, _ damage: (inout [UInt8]) -> Void) {
        var bytes = good
        damage(&bytes)
        let result = bytes.withUnsafeBytes { raw in
            Result { try StoredGraph(bytes: raw, file: "seg.tps", fileOffset: 1000, expectedCount: n) }
        }
        guard case .failure(let e) = result else { return XCTFail("\(what): accepted") }
        guard case .corrupt(let file, let offset, _) = e as? TidepoolError else { return XCTFail("\(what): \(e)") }
        XCTAssertEqual(file, "seg.tps", what)
        if let expected { XCTAssertEqual(offset, 1000 + expected, what) }
    }

    func testCompactLayoutHoldsTheSameGraphAndSearchesTheSame() throws {
        try withBuiltGraph { builder, vectors in
            let fixed = builder.storedVersion1()
            let v1 = try StoredGraph(bytes: fixed, file: "v1", fileOffset: 0, expectedCount: n)
            XCTAssertEqual(v1.version, 1)
            let queries = randomVectors(20, dim, seed: 22)
            for (ib, ob) in [(3, 4), (4, 4), (3, 8), (4, 8)] {
                let bytes = builder.storedVersion2(idBytes: ib, offsetBytes: ob)
                try bytes.withUnsafeBytes { raw in
                    let v2 = try StoredGraph(bytes: raw, file: "v2", fileOffset: 0, expectedCount: n)
                    XCTAssertEqual(v2.version, 2)
                    guard case .compact(let compact) = v2 else { return XCTFail("version 2 read as \(v2.version)") }
                    XCTAssertEqual(compact.idBytes, ib)
                    XCTAssertEqual(compact.offsetBytes, ob)
                    XCTAssertEqual(v2.entryPoint, v1.entryPoint)
                    XCTAssertEqual(v2.maxLevel, v1.maxLevel)
                    XCTAssertEqual(v2.meanDegree, v1.meanDegree)
                    XCTAssertLessThan(v2.meanDegree, Double(v1.m0), "the heuristic leaves slots empty")
                    let links = Int((v2.meanDegree * Double(n)).rounded())
                    XCTAssertEqual(
                        raw.count,
                        CompactGraphLayout(
                            count: n, upperNodes: compact.upperNodes.count, upperWords: compact.header.upperSize, links: links, idBytes: ib,
                            offsetBytes: ob
                        ).totalBytes)
                    if ib == 3 && ob == 4 { XCTAssertLessThan(raw.count, fixed.count * 3 / 4, "3-byte ids of partly filled lists") }
                    for node in 0..<UInt32(n) {
                        XCTAssertEqual(v1.level0IDs(node), v2.level0IDs(node), "node \(node)")
                        XCTAssertEqual(v1.level(node), v2.level(node))
                        for level in stride(from: v1.level(node), to: 0, by: -1) {
                            XCTAssertEqual(v1.upperIDs(node, level: level), v2.upperIDs(node, level: level))
                        }
                    }
                    for q in queries {
                        XCTAssertEqual(
                            search(v1, vectors, q, twoHop: false, admit: AdmitAll()),
                            search(v2, vectors, q, twoHop: false, admit: AdmitAll()))
                        XCTAssertEqual(
                            search(v1, vectors, q, twoHop: true, admit: AdmitEven()),
                            search(v2, vectors, q, twoHop: true, admit: AdmitEven()))
                    }
                }
            }
            // The search finds the true neighbours (the layouts agree on a good graph, not a broken one).
            var hits = 0
            for q in queries {
                let exact = (0..<n).map { r in
                    (zip(q, vectors[(r * dim)..<((r + 1) * dim)]).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, UInt32(r))
                }
                .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.prefix(10).map(\.1)
                hits += Set(exact).intersection(search(v1, vectors, q, twoHop: false, admit: AdmitAll())).count
            }
            XCTAssertGreaterThanOrEqual(Double(hits) / Double(10 * queries.count), 0.9)
        }
    }

    func testDamagedCompactLayoutIsReportedWithItsOffset() throws {
        try withBuiltGraph { builder, _ in
            let good = builder.storedVersion2(idBytes: 3, offsetBytes: 4)
            let links = good.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 40, as: UInt64.self)) }
            let header = { (at: Int) in good.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) } }
            let layout = CompactGraphLayout(
                count: n, upperNodes: header(56), upperWords: header(32), links: links, idBytes: 3, offsetBytes: 4)
            XCTAssertGreaterThan(layout.upperNodes, 1)
            func expectCorrupt(_ what: String, at expected: Int? = nil, _ damage: (inout [UInt8]) -> Void) {
                expectCorruptGraph(good, what, at: expected, damage)
            }
            func putU32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
                for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            }
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
            expectCorrupt("upper nodes out of order", at: layout.upperIDsOffset + 4) {
                putU32(&$0, layout.upperIDsOffset + 4, u32(layout.upperIDsOffset))
            }
            expectCorrupt("upper start not whole levels", at: layout.upperStartsOffset + 4) {
                putU32(&$0, layout.upperStartsOffset + 4, u32(layout.upperStartsOffset + 4) + 1)
            }
            let firstUpper = layout.upperOffset  // node upperIDs[0], level 1: count, then links
            XCTAssertGreaterThan(u32(firstUpper), 0)
            let lowNode = (0..<UInt32(n)).first { id in !(0..<layout.upperNodes).contains { u32(layout.upperIDsOffset + 4 * $0) == id } }!
            expectCorrupt("upper link to a level-0 node", at: firstUpper + 4) { putU32(&$0, firstUpper + 4, lowNode) }
            expectCorrupt("first offset not 0", at: layout.level0OffsetsOffset) { putU32(&$0, layout.level0OffsetsOffset, 1) }
            expectCorrupt("last offset differs from the link count", at: layout.level0OffsetsOffset + 4 * n) {
                putU32(&$0, layout.level0OffsetsOffset + 4 * n, UInt32(links - 1))
            }
        }
    }

    /// Version 3 holds every link of the builder's graph, renumbered by the row order, on
    /// every level; it finds the same neighbours; clustered numbering makes it smaller than version 2.
    func testVarintLayoutHoldsTheGraphUnderAnyRowOrder() throws {
        let vectors = clusteredVectors(n, dim, clusters: 30, seed: 23).flatMap { $0 }
        try vectors.withUnsafeBufferPointer { vp in
            let builder = try HNSWBuilder(
                vectors: vp.baseAddress!, count: n, dimension: dim, metric: .l2,
                parameters: HNSWParameters(m: 8, efConstruction: 60))
            builder.build(threads: 2)
            let v1 = try StoredGraph(bytes: builder.storedVersion1(), file: "v1", fileOffset: 0, expectedCount: n)
            let v2Size = builder.storedVersion2().count
            var rng = SplitMix64(seed: 5)
            var shuffled = (0..<UInt32(n)).map { $0 }
            for i in stride(from: n - 1, to: 0, by: -1) { shuffled.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let clustered = try XCTUnwrap(RowOrder.clustered(vp.baseAddress!, count: n, dimension: dim, seed: 7, threads: 2))
            XCTAssertEqual(clustered.sorted(), (0..<UInt32(n)).map { $0 }, "a permutation")
            XCTAssertEqual(
                RowOrder.clustered(vp.baseAddress!, count: n, dimension: dim, seed: 7, threads: 1), clustered,
                "same order on any thread count")
            var sizes: [String: Int] = [:]
            for (label, order) in [("identity", nil), ("shuffled", shuffled), ("clustered", clustered)] as [(String, [UInt32]?)] {
                let order2 = order ?? (0..<UInt32(n)).map { $0 }
                var rank = [UInt32](repeating: 0, count: n)
                for (new, old) in order2.enumerated() { rank[Int(old)] = UInt32(new) }
                let bytes = builder.stored(order: order)
                sizes[label] = bytes.count
                try bytes.withUnsafeBytes { raw in
                    let v3 = try StoredGraph(bytes: raw, file: "v3", fileOffset: 0, expectedCount: n)
                    XCTAssertEqual(v3.version, 3)
                    XCTAssertEqual(v3.maxLevel, v1.maxLevel)
                    XCTAssertEqual(v3.entryPoint, rank[Int(v1.entryPoint)], label)
                    XCTAssertEqual(v3.meanDegree, v1.meanDegree, label)
                    for new in 0..<n {
                        let old = order2[new]
                        XCTAssertEqual(v3.level0IDs(UInt32(new)), v1.level0IDs(old).map { rank[Int($0)] }.sorted(), "\(label) node \(new)")
                        XCTAssertEqual(v3.level(UInt32(new)), v1.level(old), label)
                        for level in stride(from: v1.level(old), to: 0, by: -1) {
                            XCTAssertEqual(
                                v3.upperIDs(UInt32(new), level: level), v1.upperIDs(old, level: level).map { rank[Int($0)] }.sorted(),
                                "\(label) node \(new) level \(level)")
                        }
                    }
                    // The same neighbours as version 1 (ties aside, the walk differs only in the order it reads a list).
                    let renumbered = order2.flatMap { vectors[(Int($0) * dim)..<((Int($0) + 1) * dim)] }
                    var agree = 0, total = 0
                    for q in randomVectors(20, dim, seed: 24) {
                        let a = search(v1, vectors, q, twoHop: false, admit: AdmitAll())
                        let b = search(v3, renumbered, q, twoHop: false, admit: AdmitAll()).map { order2[Int($0)] }
                        agree += Set(a).intersection(b).count
                        total += a.count
                        XCTAssertEqual(search(v3, renumbered, q, twoHop: true, admit: AdmitAll()).count, 10)
                    }
                    XCTAssertGreaterThanOrEqual(Double(agree) / Double(total), 0.97, label)
                }
            }
            XCTAssertLessThan(sizes["clustered"]!, sizes["shuffled"]!, "clustered numbering gives short gaps")
            XCTAssertLessThan(sizes["clustered"]!, v2Size * 3 / 4, "version 3 in cluster order against version 2's 3-byte ids")
        }
    }

    func testDamagedVarintLayoutIsReportedWithItsOffset() throws {
        try withBuiltGraph { builder, _ in
            let good = builder.stored()
            func header(_ at: Int) -> Int { good.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) } }
            let layout = VarintGraphLayout(count: n, upperNodes: header(56), upperBytes: header(32), level0Bytes: header(40), relBytes: 2)
            XCTAssertEqual(layout.totalBytes, good.count)
            XCTAssertGreaterThan(layout.upperNodes, 1)
            func expectCorrupt(_ what: String, at expected: Int? = nil, _ damage: (inout [UInt8]) -> Void) {
                expectCorruptGraph(good, what, at: expected, damage)
            }
            func putU16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) { b[at] = UInt8(v & 0xFF); b[at + 1] = UInt8(v >> 8) }
            func u16(_ at: Int) -> UInt16 { good.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt16.self) } }
            expectCorrupt("offset width 3") { $0[64] = 3 }
            expectCorrupt("link count above nodes × m0") {
                $0[48] = 0xFF; $0[49] = 0xFF; $0[50] = 0xFF
            }
            expectCorrupt("link count differs from the lists", at: 48) { $0[48] ^= 1 }
            expectCorrupt("truncated") { $0.removeLast(64) }
            // Node 0's first link made to continue into the bytes after it: out of range, or past the list's end.
            expectCorrupt("link out of range", at: layout.level0Offset) { $0[layout.level0Offset] = 0xFF }
            // Node 3's list made to end one byte early (falls into the middle of a list) and to run backwards.
            let rel4 = layout.relOffset + 2 * 4
            expectCorrupt("list cut short") { putU16(&$0, rel4, u16(rel4) - 1) }
            expectCorrupt("falling offsets", at: rel4) { putU16(&$0, rel4, u16(layout.relOffset + 2 * 3) &- 1) }
            expectCorrupt("first offset not 0", at: layout.relOffset) { putU16(&$0, layout.relOffset, 1) }
            // Node 3's end pushed past the stream (the offsets after it fall back): never read out of bounds.
            expectCorrupt("offset past the stream", at: rel4) { putU16(&$0, rel4, 0xFFFF) }
            // Upper levels: a level of 0, a level above the top, a start past the stream.
            expectCorrupt("upper level 0", at: layout.upperLevelsOffset) { $0[layout.upperLevelsOffset] = 0 }
            expectCorrupt("upper level above the top", at: layout.upperLevelsOffset) { $0[layout.upperLevelsOffset] = 60 }
            expectCorrupt("upper nodes out of order", at: layout.upperIDsOffset + 4) {
                for i in 0..<4 { $0[layout.upperIDsOffset + 4 + i] = $0[layout.upperIDsOffset + i] }
            }
            // The first upper list's count made larger than M.
            expectCorrupt("upper count above M", at: layout.upperOffset) { $0[layout.upperOffset] = 9 }
        }
    }
}
