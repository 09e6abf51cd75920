import TidepoolKernels

/// Graph layout version 2 (written before version 3, `VarintGraph`, and still read), for a graph's
/// memory to be little more than its links. Level 0, most of a graph, as compressed sparse rows:
/// the heuristic fills about half of the 2·M slots (18 of 32 on average for 1M × 128 synthetic data
/// at M 16), so lists hold only the links they have, with 3-byte ids when the segment has at most
/// 2^24 rows. Only the nodes above level 0 are listed for the upper levels (`UpperNodeIndex`).
/// At M 16 that is 64 bytes per node instead of 141 (measured, 1M × 128 at M 16) in version 1.
///
///     header (64 bytes): `GraphHeader` (magic "TPHNSW\0\2", upperSize in words), u64 level0Links,
///                        u32 idBytes (3 or 4), u32 offsetBytes (4 or 8), u64 upperNodes
///     upperIDs:      upperNodes u32, ascending: the nodes with a level ≥ 1, padded to 64 bytes
///     upperStarts:   (upperNodes + 1) u32: node upperIDs[i] has (starts[i+1] − starts[i]) / (m+1)
///                    levels, whose lists are words starts[i] ..< starts[i+1] of `upper`; padded
///     level0Offsets: (nodeCount + 1) offsets of offsetBytes each: node i's links are entries
///                    offsets[i] ..< offsets[i + 1] of the link array; padded to 64 bytes
///     level0Links:   level0Links ids of idBytes each, then 4 zero bytes (a 3-byte id is read
///                    with a 4-byte load), padded to 64 bytes
///     upper:         per upper node, levels 1...L, lists of (m + 1) u32 (count, then neighbours)
struct CompactGraphLayout {
    static let version: UInt8 = 2
    static let headerSize = 64

    let count: Int
    let upperNodes: Int
    let upperWords: Int
    let links: Int
    let idBytes: Int
    let offsetBytes: Int

    var upperIDsOffset: Int { CompactGraphLayout.headerSize }
    var upperStartsOffset: Int { align64(upperIDsOffset + 4 * upperNodes) }
    var level0OffsetsOffset: Int { align64(upperStartsOffset + 4 * (upperNodes + 1)) }
    var level0LinksOffset: Int { align64(level0OffsetsOffset + offsetBytes * (count + 1)) }
    var upperOffset: Int { align64(level0LinksOffset + idBytes * links + 4) }
    var totalBytes: Int { upperOffset + 4 * upperWords }

    /// The narrowest widths that hold this graph.
    static func widths(count: Int, links: Int) -> (idBytes: Int, offsetBytes: Int) {
        (count <= 1 << 24 ? 3 : 4, links < 1 << 32 ? 4 : 8)
    }
}

/// A version-2 graph read in place.
struct CompactGraph: StoredGraphLayout, @unchecked Sendable {
    let header: GraphHeader
    let layout: CompactGraphLayout
    let upperNodes: UpperNodeIndex
    let level0Offsets: UnsafeRawPointer
    let level0: UnsafeRawPointer
    let upper: UnsafePointer<UInt32>
    var linkCount: Int { layout.links }
    var idBytes: Int { layout.idBytes }
    var offsetBytes: Int { layout.offsetBytes }

    /// Reads the layout's own header fields after the common ones, then validates the block.
    init(header: GraphHeader, reader r: inout ByteReader, bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int) throws {
        self.header = header
        let links = try r.size("HNSW level-0 link count")
        let ib = Int(try r.u32()), ob = Int(try r.u32())
        let un = try r.size("HNSW upper node count")
        guard ib == 3 || ib == 4, ob == 4 || ob == 8 else { throw r.fail("HNSW id width \(ib) or offset width \(ob) not supported") }
        guard ib == 4 || header.count <= 1 << 24, ob == 8 || links < 1 << 32 else {
            throw r.fail("HNSW widths too narrow for \(header.count) nodes and \(links) links")
        }
        guard links <= header.count * header.m0 else {
            throw r.fail("HNSW level-0 link count \(links) above \(header.count) nodes × \(header.m0)")
        }
        guard un <= header.count else { throw r.fail("HNSW upper node count \(un) above \(header.count) nodes") }
        layout = CompactGraphLayout(
            count: header.count, upperNodes: un, upperWords: header.upperSize, links: links, idBytes: ib, offsetBytes: ob)
        guard layout.totalBytes <= bytes.count else {
            throw r.fail("HNSW block shorter than its layout (\(layout.totalBytes) > \(bytes.count))")
        }
        let base = bytes.baseAddress!
        upperNodes = UpperNodeIndex(
            ids: (base + layout.upperIDsOffset).assumingMemoryBound(to: UInt32.self),
            starts: (base + layout.upperStartsOffset).assumingMemoryBound(to: UInt32.self), count: un)
        level0Offsets = UnsafeRawPointer(base + layout.level0OffsetsOffset)
        level0 = UnsafeRawPointer(base + layout.level0LinksOffset)
        upper = (base + layout.upperOffset).assumingMemoryBound(to: UInt32.self)
        try validate { offset, reason in TidepoolError.corrupt(file: file, offset: fileOffset + offset, reason: reason) }
    }

    /// Where node `node`'s level-0 links start in the link array.
    @inline(__always) func offset(_ node: Int) -> Int {
        layout.offsetBytes == 4
            ? Int(UInt32(littleEndian: level0Offsets.loadUnaligned(fromByteOffset: 4 &* node, as: UInt32.self)))
            : Int(truncatingIfNeeded: UInt64(littleEndian: level0Offsets.loadUnaligned(fromByteOffset: 8 &* node, as: UInt64.self)))
    }

    func level(_ node: UInt32) -> Int {
        guard let i = upperNodes.index(of: node) else { return 0 }
        return Int(upperNodes.starts[i + 1] - upperNodes.starts[i]) / (header.m + 1)
    }

    @inline(__always) func level0Links(_ node: UInt32) -> LinkList {
        let start = offset(Int(node)), end = offset(Int(node) &+ 1)
        return LinkList(
            base: level0 + start &* layout.idBytes, count: end - start, stride: layout.idBytes,
            mask: layout.idBytes == 3 ? 0xFF_FFFF : .max)
    }

    /// `node`'s list at `level` ≥ 1 (count, then neighbours); empty when it has none.
    @inline(__always) func upperList(_ node: UInt32, level: Int) -> UnsafePointer<UInt32> {
        guard let u = upperNodes.index(of: node) else { return UnsafePointer(emptyLinkList) }
        return upper + Int(upperNodes.starts[u]) + (level - 1) * (header.m + 1)
    }

    @inline(__always) func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R {
        body(upperList(node, level: level))
    }
    @inline(__always) func withLevel0<R>(_ node: UInt32, _ body: (LinkList) -> R) -> R { body(level0Links(node)) }
    @inline(__always) func prefetchLevel0(_ node: UInt32) {
        let list = level0Links(node)
        tp_prefetch_range(list.base, list.count * list.stride)
    }
    @inline(__always) func prefetchLevel0Index(_ node: UInt32) { tp_prefetch(level0Offsets + layout.offsetBytes &* Int(node)) }

    /// Encodes the first `count` nodes of a graph held in the builder's fixed layout as version 2.
    /// `idBytes` and `offsetBytes` override the narrowest widths (tests cover every combination).
    static func encode(
        m: Int, m0: Int, count: Int, maxLevel: Int, entryPoint: UInt32,
        levels: UnsafePointer<UInt8>, upperOffsets: UnsafePointer<UInt32>,
        level0: UnsafePointer<UInt32>, upper: UnsafePointer<UInt32>,
        idBytes: Int? = nil, offsetBytes: Int? = nil
    ) -> [UInt8] {
        var links = 0, upperNodes = 0, upperWords = 0
        for i in 0..<count {
            links += Int(level0[i * (m0 + 1)])
            if levels[i] > 0 { upperNodes += 1; upperWords += Int(levels[i]) * (m + 1) }
        }
        let narrow = CompactGraphLayout.widths(count: count, links: links)
        let layout = CompactGraphLayout(
            count: count, upperNodes: upperNodes, upperWords: upperWords, links: links,
            idBytes: idBytes ?? narrow.idBytes, offsetBytes: offsetBytes ?? narrow.offsetBytes)
        var bytes = [UInt8](repeating: 0, count: layout.totalBytes)
        bytes.withUnsafeMutableBytes { dst in
            let d = dst.baseAddress!
            var w = ByteWriter(capacity: CompactGraphLayout.headerSize)
            GraphHeader(
                version: CompactGraphLayout.version, m: m, m0: m0, maxLevel: maxLevel, entryPoint: entryPoint,
                count: count, upperSize: upperWords
            ).encode(into: &w)
            w.u64(UInt64(links))
            w.u32(UInt32(layout.idBytes))
            w.u32(UInt32(layout.offsetBytes))
            w.u64(UInt64(upperNodes))
            w.bytes.withUnsafeBytes { d.copyMemory(from: $0.baseAddress!, byteCount: CompactGraphLayout.headerSize) }
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
                if layout.offsetBytes == 4 {
                    offsets.storeBytes(of: UInt32(next).littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                } else {
                    offsets.storeBytes(of: UInt64(next).littleEndian, toByteOffset: 8 * i, as: UInt64.self)
                }
                guard i < count else { break }
                let list = level0 + i * (m0 + 1)
                for j in 0..<Int(list[0]) {
                    // Little-endian: the id's low idBytes bytes.
                    var v = list[1 + j]
                    for b in 0..<layout.idBytes {
                        ids.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: next * layout.idBytes + b, as: UInt8.self)
                        v >>= 8
                    }
                    next += 1
                }
            }
        }
        return bytes
    }
}

extension HNSWBuilder {
    /// The graph in layout version 2, which segments written before version 3 hold; kept so tests
    /// can check that they are still read. `idBytes` and `offsetBytes` override the narrowest widths.
    func storedVersion2(idBytes: Int? = nil, offsetBytes: Int? = nil) -> [UInt8] {
        let (ep, top) = entry()
        return CompactGraph.encode(
            m: m, m0: m0, count: count, maxLevel: top, entryPoint: ep, levels: levels,
            upperOffsets: upperOffsets, level0: level0, upper: upper,
            idBytes: idBytes, offsetBytes: offsetBytes)
    }
}
