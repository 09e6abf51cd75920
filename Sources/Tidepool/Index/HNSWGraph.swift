import TidepoolKernels

/// The HNSW graph layout a builder works in (heap memory, fixed-size lists so threads can
/// insert concurrently), and the stored layout version 1, which segments written before
/// version 2 hold; both are still searched in place.
///
///     header (64 bytes): magic "TPHNSW\0\1", u32 m, u32 m0, u32 maxLevel, u32 entryPoint,
///                        u64 nodeCount, u64 upperWords, 24 reserved bytes
///     levels:        u8 per node, padded to 64 bytes
///     upperOffsets:  u32 per node: first word of its upper-level lists (0xFFFFFFFF when level 0 only), padded
///     level0:        per node (m0 + 1) u32: count, then neighbours, padded to 64 bytes
///     upper:         per node with level L ≥ 1, L lists of (m + 1) u32 (levels 1...L)
struct HNSWLayout {
    static let magic: [UInt8] = Array("TPHNSW".utf8) + [0, 1]
    static let headerSize = 64
    static let none: UInt32 = .max

    let m: Int
    let m0: Int
    let count: Int
    let upperWords: Int

    var levelsOffset: Int { HNSWLayout.headerSize }
    var upperOffsetsOffset: Int { align64(levelsOffset + count) }
    var level0Offset: Int { align64(upperOffsetsOffset + 4 * count) }
    var upperOffset: Int { align64(level0Offset + 4 * count * (m0 + 1)) }
    var totalBytes: Int { upperOffset + 4 * upperWords }
}

/// The stored layout version 2 (written before version 3, `HNSWVarintLayout`, and still read),
/// for a graph's memory to be little more than its links. Level 0,
/// most of a graph, as compressed sparse rows: the heuristic fills about half of the 2·M slots
/// (18 of 32 on average for 1M × 128 synthetic data at M 16), so lists hold only the links they
/// have, with 3-byte ids when the segment has at most 2^24 rows. Only the nodes above level 0
/// (about 1 in M) are listed for the upper levels, found by binary search during the short descent.
/// At M 16 that is 64 bytes per node instead of 141 (measured, 1M × 128 at M 16) in version 1.
///
///     header (64 bytes): magic "TPHNSW\0\2", u32 m, u32 m0, u32 maxLevel, u32 entryPoint,
///                        u64 nodeCount, u64 upperWords, u64 level0Links, u32 idBytes (3 or 4),
///                        u32 offsetBytes (4 or 8), u64 upperNodes
///     upperIDs:      upperNodes u32, ascending: the nodes with a level ≥ 1, padded to 64 bytes
///     upperStarts:   (upperNodes + 1) u32: node upperIDs[i] has (starts[i+1] − starts[i]) / (m+1)
///                    levels, whose lists are words starts[i] ..< starts[i+1] of `upper`; padded
///     level0Offsets: (nodeCount + 1) offsets of offsetBytes each: node i's links are entries
///                    offsets[i] ..< offsets[i + 1] of the link array; padded to 64 bytes
///     level0Links:   level0Links ids of idBytes each, then 4 zero bytes (a 3-byte id is read
///                    with a 4-byte load), padded to 64 bytes
///     upper:         per upper node, levels 1...L, lists of (m + 1) u32 (count, then neighbours)
struct HNSWCompactLayout {
    static let magic: [UInt8] = Array("TPHNSW".utf8) + [0, 2]

    let count: Int
    let upperNodes: Int
    let upperWords: Int
    let links: Int
    let idBytes: Int
    let offsetBytes: Int

    var upperIDsOffset: Int { HNSWLayout.headerSize }
    var upperStartsOffset: Int { align64(upperIDsOffset + 4 * upperNodes) }
    var level0OffsetsOffset: Int { align64(upperStartsOffset + 4 * (upperNodes + 1)) }
    var level0LinksOffset: Int { align64(level0OffsetsOffset + offsetBytes * (count + 1)) }
    var upperOffset: Int { align64(level0LinksOffset + idBytes * links + 4) }
    var totalBytes: Int { upperOffset + 4 * upperWords }

    /// The narrowest widths that hold this graph.
    static func widths(count: Int, links: Int) -> (idBytes: Int, offsetBytes: Int) {
        (count <= 1 << 24 ? 3 : 4, links < 1 << 32 ? 4 : 8)
    }

    /// Encodes the first `count` nodes of a graph held in the builder's fixed layout as version 2.
    /// `idBytes` and `offsetBytes` override the narrowest widths (tests cover every combination).
    static func encode(m: Int, m0: Int, count: Int, maxLevel: Int, entryPoint: UInt32,
                       levels: UnsafePointer<UInt8>, upperOffsets: UnsafePointer<UInt32>,
                       level0: UnsafePointer<UInt32>, upper: UnsafePointer<UInt32>,
                       idBytes: Int? = nil, offsetBytes: Int? = nil) -> [UInt8] {
        var links = 0, upperNodes = 0, upperWords = 0
        for i in 0..<count {
            links += Int(level0[i * (m0 + 1)])
            if levels[i] > 0 { upperNodes += 1; upperWords += Int(levels[i]) * (m + 1) }
        }
        let narrow = widths(count: count, links: links)
        let layout = HNSWCompactLayout(count: count, upperNodes: upperNodes, upperWords: upperWords, links: links,
                                       idBytes: idBytes ?? narrow.idBytes, offsetBytes: offsetBytes ?? narrow.offsetBytes)
        var bytes = [UInt8](repeating: 0, count: layout.totalBytes)
        bytes.withUnsafeMutableBytes { dst in
            let d = dst.baseAddress!
            var w = ByteWriter(capacity: 64)
            w.raw(magic)
            w.u32(UInt32(m))
            w.u32(UInt32(m0))
            w.u32(UInt32(count == 0 ? 0 : maxLevel))
            w.u32(count == 0 ? 0 : entryPoint)
            w.u64(UInt64(count))
            w.u64(UInt64(upperWords))
            w.u64(UInt64(links))
            w.u32(UInt32(layout.idBytes))
            w.u32(UInt32(layout.offsetBytes))
            w.u64(UInt64(upperNodes))
            w.bytes.withUnsafeBytes { d.copyMemory(from: $0.baseAddress!, byteCount: 64) }
            // Upper levels: the listed nodes, where their lists start, and the lists, in node order.
            var u = 0, word = 0
            for i in 0..<count where levels[i] > 0 {
                d.storeBytes(of: UInt32(i).littleEndian, toByteOffset: layout.upperIDsOffset + 4 * u, as: UInt32.self)
                d.storeBytes(of: UInt32(word).littleEndian, toByteOffset: layout.upperStartsOffset + 4 * u, as: UInt32.self)
                let n = Int(levels[i]) * (m + 1)
                (d + layout.upperOffset + 4 * word).copyMemory(from: upper + Int(upperOffsets[i]), byteCount: 4 * n)
                word += n
                u += 1
            }
            d.storeBytes(of: UInt32(word).littleEndian, toByteOffset: layout.upperStartsOffset + 4 * u, as: UInt32.self)
            // Level 0.
            let offsets = d + layout.level0OffsetsOffset
            let ids = d + layout.level0LinksOffset
            var next = 0
            for i in 0...count {
                if layout.offsetBytes == 4 { offsets.storeBytes(of: UInt32(next).littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                else { offsets.storeBytes(of: UInt64(next).littleEndian, toByteOffset: 8 * i, as: UInt64.self) }
                guard i < count else { break }
                let list = level0 + i * (m0 + 1)
                for j in 0..<Int(list[0]) {
                    // Little-endian: the id's low idBytes bytes.
                    var v = list[1 + j]
                    for b in 0..<layout.idBytes { ids.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: next * layout.idBytes + b, as: UInt8.self); v >>= 8 }
                    next += 1
                }
            }
        }
        return bytes
    }
}

@inline(__always) func align64(_ x: Int) -> Int { (x + 63) & ~63 }

/// A list with no links, returned for a node that has no list at a level (never, once a graph
/// is validated; kept so that a lookup cannot read out of bounds).
nonisolated(unsafe) private let emptyLinks: UnsafeMutablePointer<UInt32> = {
    let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

/// One node's level-0 links, wherever they are stored: `count` ids of `stride` bytes from `base`
/// (4-byte ids in the fixed layouts, 3 or 4 in the compact one; a 3-byte id is a 4-byte
/// little-endian load masked to 24 bits).
struct LinkList {
    let base: UnsafeRawPointer
    let count: Int
    let stride: Int
    let mask: UInt32

    @inline(__always) init(base: UnsafeRawPointer, count: Int, stride: Int, mask: UInt32) {
        self.base = base
        self.count = count
        self.stride = stride
        self.mask = mask
    }

    /// A fixed-layout list: a u32 count, then u32 ids.
    @inline(__always) init(fixed list: UnsafePointer<UInt32>) {
        self.init(base: UnsafeRawPointer(list + 1), count: Int(list[0]), stride: 4, mask: .max)
    }

    @inline(__always) subscript(j: Int) -> UInt32 {
        UInt32(littleEndian: base.loadUnaligned(fromByteOffset: j &* stride, as: UInt32.self)) & mask
    }
}

/// A read-only view of a stored graph (layout version 1, 2 or 3), plus the search over it.
struct HNSWGraphView: @unchecked Sendable {
    let m: Int
    let m0: Int
    let maxLevel: Int
    let entryPoint: UInt32
    let count: Int
    /// 1 (fixed lists), 2 (compressed sparse rows) or 3 (varint lists).
    let version: Int
    /// Version 1: u8 level per node and u32 first upper word per node.
    let levels: UnsafePointer<UInt8>
    let upperOffsets: UnsafePointer<UInt32>
    /// Versions 2 and 3: the nodes above level 0 and where their lists start (words of `upper`
    /// in version 2, bytes of `upperStream` in version 3).
    let upperIDs: UnsafePointer<UInt32>
    let upperStarts: UnsafePointer<UInt32>
    let upperNodes: Int
    /// Version 3: each upper node's top level.
    let upperLevels: UnsafePointer<UInt8>
    /// Version 1: the fixed lists. Version 2: the link array. Version 3: the level-0 byte stream.
    let level0: UnsafeRawPointer
    /// Version 2: the offsets into the link array. Version 3: the per-node offsets within a group.
    let level0Offsets: UnsafeRawPointer
    /// Version 3: where each group of 64 nodes' lists start (u64).
    let groupBases: UnsafeRawPointer
    let idBytes: Int
    /// Width of a level-0 offset: version 2's offsets, version 3's in-group offsets.
    let offsetBytes: Int
    /// Level-0 links in the whole graph (versions 2 and 3; -1 for version 1, which does not store it).
    let linkCount: Int
    let upper: UnsafePointer<UInt32>
    /// Version 3: the upper lists.
    let upperStream: UnsafePointer<UInt8>
    /// Words of upper lists (versions 1 and 2), bytes of them (version 3).
    let upperWords: Int
    /// Version 3: bytes of level-0 lists.
    let level0Bytes: Int

    /// Parses and validates a graph block. Every link is checked to be in range, and every
    /// upper-level link to lead to a node on that level, so a damaged graph is an error,
    /// never an out-of-bounds read.
    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, expectedCount: Int) throws {
        var r = ByteReader(bytes, file: file, fileOffset: fileOffset)
        let magic = Array(try r.bytes(8, "HNSW magic"))
        if magic == HNSWLayout.magic { version = 1 } else if magic == HNSWCompactLayout.magic { version = 2 }
        else if magic == HNSWVarintLayout.magic { version = 3 } else { throw r.fail("bad HNSW block magic") }
        m = Int(try r.u32())
        m0 = Int(try r.u32())
        maxLevel = Int(try r.u32())
        entryPoint = try r.u32()
        count = try r.size("HNSW node count")
        upperWords = try r.size("HNSW upper words")
        guard m >= 1 && m <= 1024 && m0 >= m && m0 <= 2048, maxLevel <= 64 else { throw r.fail("implausible HNSW parameters m=\(m) m0=\(m0) maxLevel=\(maxLevel)") }
        guard count == expectedCount else { throw r.fail("HNSW node count \(count) differs from row count \(expectedCount)") }
        guard count == 0 || Int(entryPoint) < count else { throw r.fail("HNSW entry point \(entryPoint) out of range") }
        guard count < 1 << 32, upperWords < 1 << 32 else { throw r.fail("HNSW graph of \(count) nodes and \(upperWords) upper words is too large") }
        let base = bytes.baseAddress!
        var o = (levels: 0, upperOffsets: 0, upperIDs: 0, upperStarts: 0, level0: 0, level0Offsets: 0, upper: 0)
        var v3 = (upperLevels: 0, groupBases: 0)
        if version == 1 {
            let layout = HNSWLayout(m: m, m0: m0, count: count, upperWords: upperWords)
            guard layout.totalBytes <= bytes.count else { throw r.fail("HNSW block shorter than its layout (\(layout.totalBytes) > \(bytes.count))") }
            o = (layout.levelsOffset, layout.upperOffsetsOffset, 0, 0, layout.level0Offset, layout.level0Offset, layout.upperOffset)
            (idBytes, offsetBytes, linkCount, upperNodes, level0Bytes) = (4, 4, -1, 0, 0)
        } else if version == 3 {
            let l0Bytes = try r.size("HNSW level-0 bytes")
            let links = try r.size("HNSW level-0 link count")
            let un = try r.size("HNSW upper node count")
            let rb = Int(try r.u32())
            guard rb == 2 || rb == 4 else { throw r.fail("HNSW in-group offset width \(rb) not supported") }
            guard rb == 4 || HNSWVarintLayout.relBytes(m0: m0) == 2 else { throw r.fail("HNSW in-group offset width \(rb) too narrow for M0 \(m0)") }
            guard links <= count * m0 else { throw r.fail("HNSW level-0 link count \(links) above \(count) nodes × \(m0)") }
            guard l0Bytes <= links * 10 else { throw r.fail("HNSW level-0 bytes \(l0Bytes) above 10 per link (\(links) links)") }
            guard un <= count else { throw r.fail("HNSW upper node count \(un) above \(count) nodes") }
            let layout = HNSWVarintLayout(count: count, upperNodes: un, upperBytes: upperWords, level0Bytes: l0Bytes, relBytes: rb)
            guard layout.totalBytes <= bytes.count else { throw r.fail("HNSW block shorter than its layout (\(layout.totalBytes) > \(bytes.count))") }
            o = (0, 0, layout.upperIDsOffset, layout.upperStartsOffset, layout.level0Offset, layout.relOffset, layout.upperOffset)
            v3 = (layout.upperLevelsOffset, layout.groupBasesOffset)
            (idBytes, offsetBytes, linkCount, upperNodes, level0Bytes) = (0, rb, links, un, l0Bytes)
        } else {
            let links = try r.size("HNSW level-0 link count")
            let ib = Int(try r.u32()), ob = Int(try r.u32())
            let un = try r.size("HNSW upper node count")
            guard ib == 3 || ib == 4, ob == 4 || ob == 8 else { throw r.fail("HNSW id width \(ib) or offset width \(ob) not supported") }
            guard ib == 4 || count <= 1 << 24, ob == 8 || links < 1 << 32 else { throw r.fail("HNSW widths too narrow for \(count) nodes and \(links) links") }
            guard links <= count * m0 else { throw r.fail("HNSW level-0 link count \(links) above \(count) nodes × \(m0)") }
            guard un <= count else { throw r.fail("HNSW upper node count \(un) above \(count) nodes") }
            let layout = HNSWCompactLayout(count: count, upperNodes: un, upperWords: upperWords, links: links, idBytes: ib, offsetBytes: ob)
            guard layout.totalBytes <= bytes.count else { throw r.fail("HNSW block shorter than its layout (\(layout.totalBytes) > \(bytes.count))") }
            o = (0, 0, layout.upperIDsOffset, layout.upperStartsOffset, layout.level0LinksOffset, layout.level0OffsetsOffset, layout.upperOffset)
            (idBytes, offsetBytes, linkCount, upperNodes, level0Bytes) = (ib, ob, links, un, 0)
        }
        levels = (base + o.levels).assumingMemoryBound(to: UInt8.self)
        upperOffsets = (base + o.upperOffsets).assumingMemoryBound(to: UInt32.self)
        upperIDs = (base + o.upperIDs).assumingMemoryBound(to: UInt32.self)
        upperStarts = (base + o.upperStarts).assumingMemoryBound(to: UInt32.self)
        level0 = UnsafeRawPointer(base + o.level0)
        level0Offsets = UnsafeRawPointer(base + o.level0Offsets)
        upper = (base + o.upper).assumingMemoryBound(to: UInt32.self)
        upperStream = (base + o.upper).assumingMemoryBound(to: UInt8.self)
        upperLevels = (base + v3.upperLevels).assumingMemoryBound(to: UInt8.self)
        groupBases = UnsafeRawPointer(base + v3.groupBases)
        if version == 3 {
            try validateVarint(file: file, at: { fileOffset + $0 }, o, upperLevels: v3.upperLevels)
            return
        }
        try validate(file: file, at: { fileOffset + $0 }, o)
    }

    @inline(__always) private func offset(_ node: Int) -> Int {
        if version == 3 {
            let base = Int(truncatingIfNeeded: UInt64(littleEndian: groupBases.loadUnaligned(fromByteOffset: 8 &* (node >> 6), as: UInt64.self)))
            let rel = offsetBytes == 2 ? Int(UInt16(littleEndian: level0Offsets.loadUnaligned(fromByteOffset: 2 &* node, as: UInt16.self)))
                                       : Int(UInt32(littleEndian: level0Offsets.loadUnaligned(fromByteOffset: 4 &* node, as: UInt32.self)))
            return base &+ rel
        }
        return offsetBytes == 4 ? Int(UInt32(littleEndian: level0Offsets.loadUnaligned(fromByteOffset: 4 * node, as: UInt32.self)))
                         : Int(truncatingIfNeeded: UInt64(littleEndian: level0Offsets.loadUnaligned(fromByteOffset: 8 * node, as: UInt64.self)))
    }

    /// Versions 2 and 3: `node`'s index among the upper nodes, if it is one.
    @inline(__always) private func upperIndex(_ node: UInt32) -> Int? {
        var lo = 0, hi = upperNodes
        while lo < hi {
            let mid = (lo + hi) >> 1
            if upperIDs[mid] < node { lo = mid + 1 } else { hi = mid }
        }
        return lo < upperNodes && upperIDs[lo] == node ? lo : nil
    }

    /// The top level of `node`.
    func level(_ node: UInt32) -> Int {
        if version == 1 { return Int(levels[Int(node)]) }
        guard let i = upperIndex(node) else { return 0 }
        if version == 3 { return Int(upperLevels[i]) }
        return Int(upperStarts[i + 1] - upperStarts[i]) / (m + 1)
    }

    /// The first word of `node`'s upper lists (nil when it has none).
    private func upperStart(_ node: UInt32) -> Int? {
        if version == 1 { return upperOffsets[Int(node)] == HNSWLayout.none ? nil : Int(upperOffsets[Int(node)]) }
        return upperIndex(node).map { Int(upperStarts[$0]) }
    }

    private func validate(file: String, at: (Int) -> Int,
                          _ o: (levels: Int, upperOffsets: Int, upperIDs: Int, upperStarts: Int, level0: Int, level0Offsets: Int, upper: Int)) throws {
        func corrupt(_ offset: Int, _ reason: String) -> TidepoolError { .corrupt(file: file, offset: at(offset), reason: reason) }
        let n = UInt32(count)
        if version == 2 {
            // Upper nodes ascend; their lists tile `upper` in whole levels, at most maxLevel each.
            try validateUpperIndex(o, unit: "word", corrupt)
            for i in 0..<upperNodes {
                let words = Int(upperStarts[i + 1]) - Int(upperStarts[i])
                if words <= 0 || words % (m + 1) != 0 || words / (m + 1) > maxLevel {
                    throw corrupt(o.upperStarts + 4 * (i + 1), "HNSW upper node \(upperIDs[i]) has \(words) words of lists (whole levels of \(m + 1), at most \(maxLevel))")
                }
            }
            // Level-0 offsets start at 0, never fall, end at the link count, and give no node more than m0 links.
            var prev = offset(0)
            if prev != 0 { throw corrupt(o.level0Offsets, "HNSW first level-0 offset \(prev), not 0") }
            for i in 0..<count {
                let next = offset(i + 1)
                if next < prev || next - prev > m0 {
                    throw corrupt(o.level0Offsets + offsetBytes * (i + 1), "HNSW node \(i) has level-0 offsets \(prev)..<\(next) (at most \(m0) links)")
                }
                prev = next
            }
            if prev != linkCount { throw corrupt(o.level0Offsets + offsetBytes * count, "HNSW last level-0 offset \(prev) differs from the link count \(linkCount)") }
            let all = LinkList(base: level0, count: linkCount, stride: idBytes, mask: idBytes == 3 ? 0xFF_FFFF : .max)
            for e in 0..<linkCount where all[e] >= n { throw corrupt(o.level0 + idBytes * e, "HNSW link \(all[e]) out of range") }
        } else {
            for i in 0..<count {
                if Int(levels[i]) > maxLevel { throw corrupt(o.levels + i, "HNSW node \(i) level \(levels[i]) above max \(maxLevel)") }
                let l0 = level0.assumingMemoryBound(to: UInt32.self) + i * (m0 + 1)
                if Int(l0[0]) > m0 { throw corrupt(o.level0 + 4 * i * (m0 + 1), "HNSW node \(i) has \(l0[0]) links, more than \(m0)") }
                for j in 0..<Int(l0[0]) where l0[1 + j] >= n { throw corrupt(o.level0 + 4 * (i * (m0 + 1) + 1 + j), "HNSW link \(l0[1 + j]) out of range") }
                if levels[i] > 0 && (upperOffsets[i] == HNSWLayout.none || Int(upperOffsets[i]) + Int(levels[i]) * (m + 1) > upperWords) {
                    throw corrupt(o.upperOffsets + 4 * i, "HNSW upper-level offset of node \(i) out of range")
                }
            }
        }
        // Upper lists: at most m links each, every one to a node that has that level (the descent
        // reads the lists of the nodes it moves to).
        for i in 0..<(version == 1 ? count : upperNodes) {
            let node = version == 1 ? UInt32(i) : upperIDs[i]
            let lv = level(node)
            guard lv > 0, let start = upperStart(node) else { continue }
            for l in 1...lv {
                let word = start + (l - 1) * (m + 1)
                let list = upper + word
                if Int(list[0]) > m { throw corrupt(o.upper + 4 * word, "HNSW node \(node) level \(l) has \(list[0]) links") }
                for j in 0..<Int(list[0]) where list[1 + j] >= n || level(list[1 + j]) < l {
                    throw corrupt(o.upper + 4 * (word + 1 + j), "HNSW level-\(l) link \(list[1 + j]) out of range or to a node below level \(l)")
                }
            }
        }
        if count > 0 && level(entryPoint) != maxLevel { throw corrupt(0, "HNSW entry point is not on the top level") }
    }

    /// Versions 2 and 3: the upper nodes ascend and are in range, and their starts run from 0 to
    /// the end of the upper lists (`upperWords` words or bytes).
    private func validateUpperIndex(_ o: (levels: Int, upperOffsets: Int, upperIDs: Int, upperStarts: Int, level0: Int, level0Offsets: Int, upper: Int),
                                    unit: String, _ corrupt: (Int, String) -> TidepoolError) throws {
        for i in 0..<upperNodes where upperIDs[i] >= UInt32(count) || (i > 0 && upperIDs[i] <= upperIDs[i - 1]) {
            throw corrupt(o.upperIDs + 4 * i, "HNSW upper node \(upperIDs[i]) out of order or range")
        }
        if upperStarts[0] != 0 { throw corrupt(o.upperStarts, "HNSW first upper start \(upperStarts[0]), not 0") }
        if Int(upperStarts[upperNodes]) != upperWords {
            throw corrupt(o.upperStarts + 4 * upperNodes, "HNSW upper lists end at \(unit) \(upperStarts[upperNodes]), not \(upperWords)")
        }
    }

    /// Version 3: every list decodes within its bytes to at most M0 (level 0) or M (upper) ascending
    /// ids in range, the lists tile both streams exactly, and every upper link leads to a node on
    /// that level — so the unchecked decoding a search uses never reads out of bounds.
    private func validateVarint(file: String, at: (Int) -> Int,
                                _ o: (levels: Int, upperOffsets: Int, upperIDs: Int, upperStarts: Int, level0: Int, level0Offsets: Int, upper: Int),
                                upperLevels levelsOffset: Int) throws {
        func corrupt(_ offset: Int, _ reason: String) -> TidepoolError { .corrupt(file: file, offset: at(offset), reason: reason) }
        try validateUpperIndex(o, unit: "byte", corrupt)
        for i in 0..<upperNodes {
            if upperLevels[i] == 0 || Int(upperLevels[i]) > maxLevel { throw corrupt(levelsOffset + i, "HNSW upper node \(upperIDs[i]) has level \(upperLevels[i]) (1...\(maxLevel))") }
            if upperStarts[i + 1] < upperStarts[i] { throw corrupt(o.upperStarts + 4 * (i + 1), "HNSW upper starts fall at upper node \(upperIDs[i])") }
        }
        // Level 0: offsets from 0, never falling, ending at the stream's length; each list decodes exactly.
        if offset(0) != 0 { throw corrupt(o.level0Offsets, "HNSW first level-0 offset \(offset(0)), not 0") }
        if offset(count) != level0Bytes { throw corrupt(o.level0Offsets + offsetBytes * count, "HNSW last level-0 offset \(offset(count)) differs from the stream's \(level0Bytes) bytes") }
        let stream = level0.assumingMemoryBound(to: UInt8.self)
        var links = 0
        for v in 0..<count {
            var i = offset(v)
            let end = offset(v + 1)
            if end < i || end > level0Bytes {
                throw corrupt(o.level0Offsets + offsetBytes * (v + 1), "HNSW node \(v) has level-0 offsets \(i)..<\(end) (stream of \(level0Bytes) bytes)")
            }
            switch VarintList.decodeChecked(stream, &i, end: end, count: nil, node: UInt32(v), limit: m0, nodes: count) {
            case .success(let ids): links += ids.count
            case .failure(let d): throw corrupt(o.level0 + d.at, "HNSW node \(v)'s level-0 list: \(d.reason)")
            }
        }
        if links != linkCount { throw corrupt(48, "HNSW level-0 lists hold \(links) links, the header says \(linkCount)") }
        // Upper levels: whole lists per level, ending exactly at the next node's start.
        for u in 0..<upperNodes {
            let node = upperIDs[u]
            var i = Int(upperStarts[u])
            let end = Int(upperStarts[u + 1])
            for l in 1...Int(upperLevels[u]) {
                let at = i
                guard let c = VarintList.readChecked(upperStream, &i, end: end), c <= UInt64(m) else {
                    throw corrupt(o.upper + at, "HNSW node \(node) level \(l): bad link count")
                }
                switch VarintList.decodeChecked(upperStream, &i, end: end, count: Int(c), node: node, limit: m, nodes: count) {
                case .success(let ids):
                    for id in ids where level(id) < l { throw corrupt(o.upper + at, "HNSW level-\(l) link \(id) to a node below level \(l)") }
                case .failure(let d): throw corrupt(o.upper + d.at, "HNSW node \(node) level \(l): \(d.reason)")
                }
            }
            if i != end { throw corrupt(o.upper + i, "HNSW node \(node)'s upper lists end at byte \(i), not \(end)") }
        }
        if count > 0 && level(entryPoint) != maxLevel { throw corrupt(0, "HNSW entry point is not on the top level") }
    }

    /// Level-0 links per node on average (the heuristic leaves many of the m0 slots empty).
    var meanDegree: Double {
        guard count > 0 else { return 0 }
        if version >= 2 { return Double(linkCount) / Double(count) }
        let l0 = level0.assumingMemoryBound(to: UInt32.self)
        return Double((0..<count).reduce(0) { $0 + Int(l0[$1 * (m0 + 1)]) }) / Double(count)
    }

    /// `node`'s level-0 links, in stored order (ascending in version 3), for any version.
    func level0IDs(_ node: UInt32) -> [UInt32] {
        withLevel0(node) { list in (0..<list.count).map { list[$0] } }
    }

    /// `node`'s links at `level` ≥ 1, for any version.
    func upperIDs(_ node: UInt32, level: Int) -> [UInt32] {
        withLinks(node, level: level) { Array(UnsafeBufferPointer(start: $0 + 1, count: Int($0[0]))) }
    }

    /// Version 1 and 2 lists are read in place; version 3 decodes them (`withLevel0`).
    @inline(__always)
    func level0Links(_ node: UInt32) -> LinkList {
        if version == 1 { return LinkList(fixed: level0.assumingMemoryBound(to: UInt32.self) + Int(node) * (m0 + 1)) }
        let start = offset(Int(node)), end = offset(Int(node) + 1)
        return LinkList(base: level0 + start &* idBytes, count: end - start, stride: idBytes, mask: idBytes == 3 ? 0xFF_FFFF : .max)
    }

    /// `node`'s list at `level` ≥ 1 (count, then neighbours); empty when it has none (which a
    /// validated graph never asks for).
    @inline(__always)
    func upperLinks(_ node: UInt32, level: Int) -> UnsafePointer<UInt32> {
        guard let start = upperStart(node) else { return UnsafePointer(emptyLinks) }
        return upper + start + (level - 1) * (m + 1)
    }
}

extension HNSWGraphView: HNSWLinks {
    @inline(__always)
    func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R {
        guard version == 3 else { return body(upperLinks(node, level: level)) }
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: m + 1) { buf in
            let out = buf.baseAddress!
            out[0] = 0
            guard let u = upperIndex(node), level <= Int(upperLevels[u]) else { return body(UnsafePointer(out)) }
            var i = Int(upperStarts[u])
            let end = Int(upperStarts[u + 1])
            for l in 1...level {
                let n = Int(VarintList.read(upperStream, &i))
                let got = VarintList.decode(upperStream, &i, end: end, count: n, node: node, into: out + 1)
                if l == level { out[0] = UInt32(got) }
            }
            return body(UnsafePointer(out))
        }
    }
    @inline(__always)
    func withLevel0<R>(_ node: UInt32, _ body: (LinkList) -> R) -> R {
        guard version == 3 else { return body(level0Links(node)) }
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: m0) { buf in
            var i = offset(Int(node))
            let n = VarintList.decode(level0.assumingMemoryBound(to: UInt8.self), &i, end: offset(Int(node) &+ 1), count: nil,
                                      node: node, into: buf.baseAddress!)
            return body(LinkList(base: UnsafeRawPointer(buf.baseAddress!), count: n, stride: 4, mask: .max))
        }
    }
    @inline(__always) func prefetchLevel0(_ node: UInt32) {
        if version == 3 {
            let start = offset(Int(node))
            tp_prefetch_range(level0 + start, offset(Int(node) &+ 1) &- start)
            return
        }
        let list = level0Links(node)
        tp_prefetch_range(list.base, list.count * list.stride)
    }
    @inline(__always) func prefetchLevel0Index(_ node: UInt32) {
        if version >= 2 { tp_prefetch(level0Offsets + offsetBytes &* Int(node)) }
    }
}

/// Where a search reads link lists: a finished graph, read in place without locks, or a
/// graph still being built (the in-memory tier's), whose lists are read under each node's lock.
protocol HNSWLinks {
    /// Runs `body` over `node`'s list at `level` ≥ 1 (count, then neighbours). `body` must not read another list.
    func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R
    /// Runs `body` over `node`'s level-0 links. `body` must not read another list.
    func withLevel0<R>(_ node: UInt32, _ body: (LinkList) -> R) -> R
    /// Pulls in `node`'s level-0 links (a hint: no lock is taken).
    func prefetchLevel0(_ node: UInt32)
    /// Pulls in where `node`'s level-0 links start, when finding them takes a load of its own
    /// (compact layout), so expanding a candidate later costs one miss, not two.
    func prefetchLevel0Index(_ node: UInt32)
}

/// HNSW search over any link source (Malkov & Yashunin, algorithm 5), skipping rows `admit`
/// refuses while still routing through them; with `twoHop`, ACORN-style filtered expansion.
/// Emits up to `k` (distance, row) pairs, unsorted; returns the number of distances computed.
@inline(__always)
func hnswSearch<G: HNSWLinks, D: RowDistance, A: RowAdmission>(_ g: G, entryPoint: UInt32, maxLevel: Int, count: Int,
                                                              distance dist: D, k: Int, ef: Int, admit: A, twoHop: Bool,
                                                              scratch: SearchScratch, emit: (Float, UInt32) -> Void) -> Int {
    guard count > 0 else { return 0 }
    let ef = max(ef, k)
    let gen = scratch.begin(nodes: count, heap: ef + 1)
    let visited = scratch.visited

    var cur = entryPoint
    var curDist = dist(cur)
    var computed = 1
    if maxLevel > 0 {
        let copy = scratch.linkBuffer
        for level in stride(from: maxLevel, to: 0, by: -1) {
            var changed = true
            while changed {
                changed = false
                let n = g.withLinks(cur, level: level) { list in
                    let n = Int(list[0])
                    for j in 0..<n { copy[j] = list[1 + j] }
                    return n
                }
                for j in 0..<n {
                    let cand = copy[j]
                    let d = dist(cand)
                    computed += 1
                    if d < curDist {
                        curDist = d
                        cur = cand
                        changed = true
                    }
                }
            }
        }
    }

    var candidates = MinHeap(storage: scratch.heapA, capacity: scratch.candidateCapacity)
    var results = MaxHeap(storage: scratch.heapB, capacity: scratch.heapCapacity)
    candidates.push(Neighbor(dist: curDist, id: cur))
    visited[Int(cur)] = gen
    if admit.admits(cur) { results.push(Neighbor(dist: curDist, id: cur)) }
    var lowerBound: Float = results.isEmpty ? .infinity : curDist
    let fresh = scratch.neighborBuffer
    let cap = SearchScratch.neighborBufferCapacity
    let hopList = scratch.linkBuffer

    while !candidates.isEmpty {
        let c = candidates.top
        if c.dist > lowerBound && results.count == ef { break }
        candidates.pop()
        // The next candidate's list is likely the next one read: pull it in while this one is
        // expanded (its offset was prefetched when it was queued).
        if !candidates.isEmpty { g.prefetchLevel0(candidates.top.id) }
        // Gather the unvisited neighbours, prefetching the first line of each ...
        var m = 0
        if twoHop {
            // Filtered (ACORN-style): a disallowed neighbour costs no distance; its own
            // neighbours are gathered instead, so the walk stays among allowed nodes.
            let n = g.withLevel0(c.id) { list in
                for j in 0..<list.count { hopList[j] = list[j] }
                return list.count
            }
            // Pull in the link lists of the disallowed neighbours first, so their misses overlap.
            for j in 0..<n {
                let e = hopList[j]
                if visited[Int(e)] != gen && !admit.allowed(e) { g.prefetchLevel0(e) }
            }
            for j in 0..<n {
                let e = hopList[j]
                if visited[Int(e)] == gen { continue }
                visited[Int(e)] = gen
                if admit.allowed(e) {
                    if m < cap { fresh[m] = e; m += 1; dist.prefetch(e) }
                    continue
                }
                m = g.withLevel0(e) { hop in
                    var m = m
                    for j2 in 0..<hop.count {
                        let e2 = hop[j2]
                        if visited[Int(e2)] == gen || !admit.allowed(e2) { continue }
                        visited[Int(e2)] = gen
                        if m < cap { fresh[m] = e2; m += 1; dist.prefetch(e2) }
                    }
                    return m
                }
            }
        } else {
            m = g.withLevel0(c.id) { list in
                var m = 0
                for j in 0..<list.count {
                    let e = list[j]
                    if visited[Int(e)] == gen { continue }
                    visited[Int(e)] = gen
                    fresh[m] = e
                    m += 1
                    dist.prefetch(e)
                }
                return m
            }
        }
        // ... then compute, pulling in the whole next vector while this one computes.
        for t in 0..<m {
            let e = fresh[t]
            if t + 1 < m { dist.prefetchAll(fresh[t + 1]) }
            let d = dist(e)
            computed += 1
            if results.count < ef || d < lowerBound {
                candidates.push(Neighbor(dist: d, id: e))
                g.prefetchLevel0Index(e)
                if admit.admits(e) {
                    if results.count < ef {
                        results.push(Neighbor(dist: d, id: e))
                    } else {
                        results.replaceTop(Neighbor(dist: d, id: e))
                    }
                }
                if !results.isEmpty { lowerBound = results.top.dist }
            }
        }
    }
    while results.count > k { results.pop() }
    for i in 0..<results.count { emit(results.storage[i].dist, results.storage[i].id) }
    return computed
}

/// Distances from one query to rows of a container, by row: full-precision vectors, or
/// compressed codes. Generic parameters of the graph search, so each is specialized.
protocol RowDistance {
    func callAsFunction(_ row: UInt32) -> Float
    /// Pulls in the first cache line of a row.
    func prefetch(_ row: UInt32)
    /// Pulls in all of a row.
    func prefetchAll(_ row: UInt32)
}

/// Exact distances to f32 vectors.
struct F32RowDistance: RowDistance {
    let query: UnsafePointer<Float>
    let vectors: UnsafePointer<Float>
    let distance: DistanceFunction

    @inline(__always) func callAsFunction(_ row: UInt32) -> Float { distance(query, vectors + Int(row) * distance.dimension) }
    @inline(__always) func prefetch(_ row: UInt32) { tp_prefetch(vectors + Int(row) * distance.dimension) }
    @inline(__always) func prefetchAll(_ row: UInt32) {
        tp_prefetch_range(vectors + Int(row) * distance.dimension, distance.dimension * 4)
    }
}
