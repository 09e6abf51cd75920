/// The fields every stored graph layout's header starts with (little-endian):
///
///     magic "TPHNSW\0" + version byte, u32 m, u32 m0, u32 maxLevel, u32 entryPoint,
///     u64 nodeCount, u64 upperSize (words of upper lists in versions 1 and 2, bytes in version 3)
///
/// Each layout's header continues with its own fields (`FixedGraph`, `CompactGraph`, `VarintGraph`).
struct GraphHeader: Equatable {
    static let magicPrefix: [UInt8] = Array("TPHNSW".utf8) + [0]
    /// Bytes of the common part.
    static let commonSize = 40

    var version: UInt8
    var m: Int
    var m0: Int
    var maxLevel: Int
    var entryPoint: UInt32
    var count: Int
    var upperSize: Int

    static func magic(version: UInt8) -> [UInt8] { magicPrefix + [version] }

    func encode(into w: inout ByteWriter) {
        w.raw(GraphHeader.magic(version: version))
        w.u32(UInt32(m))
        w.u32(UInt32(m0))
        w.u32(UInt32(count == 0 ? 0 : maxLevel))
        w.u32(count == 0 ? 0 : entryPoint)
        w.u64(UInt64(count))
        w.u64(UInt64(upperSize))
    }

    /// Reads and checks the common fields; `expectedCount` is the segment's row count.
    static func decode(_ r: inout ByteReader, expectedCount: Int) throws -> GraphHeader {
        let magic = Array(try r.bytes(8, "HNSW magic"))
        guard magic.prefix(7).elementsEqual(magicPrefix), (1...3).contains(magic[7]) else { throw r.fail("bad HNSW block magic") }
        let m = Int(try r.u32()), m0 = Int(try r.u32()), maxLevel = Int(try r.u32())
        let entryPoint = try r.u32()
        let count = try r.size("HNSW node count")
        let upperSize = try r.size("HNSW upper list size")
        guard m >= 1 && m <= 1024 && m0 >= m && m0 <= 2048, maxLevel <= 64 else {
            throw r.fail("implausible HNSW parameters m=\(m) m0=\(m0) maxLevel=\(maxLevel)")
        }
        guard count == expectedCount else { throw r.fail("HNSW node count \(count) differs from row count \(expectedCount)") }
        guard count == 0 || Int(entryPoint) < count else { throw r.fail("HNSW entry point \(entryPoint) out of range") }
        guard count < 1 << 32, upperSize < 1 << 32 else {
            throw r.fail("HNSW graph of \(count) nodes and \(upperSize) upper words is too large")
        }
        return GraphHeader(version: magic[7], m: m, m0: m0, maxLevel: maxLevel, entryPoint: entryPoint, count: count, upperSize: upperSize)
    }
}

/// What every stored layout offers besides the links a search reads: its shape, for `inspect`,
/// the planner and the tests.
protocol StoredGraphLayout: HNSWLinks {
    var header: GraphHeader { get }
    /// Level-0 links in the whole graph.
    var linkCount: Int { get }
    /// The top level of `node`.
    func level(_ node: UInt32) -> Int
}

extension StoredGraphLayout {
    var m: Int { header.m }
    var m0: Int { header.m0 }
    var count: Int { header.count }
    var maxLevel: Int { header.maxLevel }
    var entryPoint: UInt32 { header.entryPoint }

    /// Level-0 links per node on average (the heuristic leaves many of the m0 slots empty).
    var meanDegree: Double { count == 0 ? 0 : Double(linkCount) / Double(count) }

    /// `node`'s level-0 links, in stored order (ascending in version 3).
    func level0IDs(_ node: UInt32) -> [UInt32] {
        withLevel0(node) { list in (0..<list.count).map { list[$0] } }
    }

    /// `node`'s links at `level` ≥ 1.
    func upperIDs(_ node: UInt32, level: Int) -> [UInt32] {
        withLinks(node, level: level) { Array(UnsafeBufferPointer(start: $0 + 1, count: Int($0[0]))) }
    }
}

/// Versions 2 and 3 list only the nodes above level 0 (about 1 in M), ascending, found by binary
/// search during the short descent.
struct UpperNodeIndex {
    let ids: UnsafePointer<UInt32>
    let starts: UnsafePointer<UInt32>
    let count: Int

    /// `node`'s index among the upper nodes, if it is one.
    @inline(__always) func index(of node: UInt32) -> Int? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if ids[mid] < node { lo = mid + 1 } else { hi = mid }
        }
        return lo < count && ids[lo] == node ? lo : nil
    }

    /// The upper nodes ascend and are in range, and their starts run from 0 to the end of the
    /// upper lists (`upperSize` words or bytes). Offsets are relative to the graph block.
    func validate(
        nodes: Int, upperSize: Int, unit: String, idsAt: Int, startsAt: Int,
        _ corrupt: (Int, String) -> TidepoolError
    ) throws {
        for i in 0..<count where ids[i] >= UInt32(nodes) || (i > 0 && ids[i] <= ids[i - 1]) {
            throw corrupt(idsAt + 4 * i, "HNSW upper node \(ids[i]) out of order or range")
        }
        if starts[0] != 0 { throw corrupt(startsAt, "HNSW first upper start \(starts[0]), not 0") }
        if Int(starts[count]) != upperSize {
            throw corrupt(startsAt + 4 * count, "HNSW upper lists end at \(unit) \(starts[count]), not \(upperSize)")
        }
    }
}
