import TidepoolKernels

/// The stored graph layout version 3, written since rows are renumbered in cluster order
/// (`RowOrder`): a node's neighbours are then mostly rows near its own number, so each list
/// is stored sorted, as LEB128 varints — the first neighbour as a zigzag difference from the
/// node itself, each next one as the gap from the previous minus one. On 1M × 128 synthetic data
/// at M 16 that is 28–29 bytes of level-0 links per node instead of 55 with 3-byte ids (version 2).
/// A list is found through a u64 base per group of 64 nodes plus a narrow offset per node
/// (2 bytes when M0 ≤ 208), and upper-level lists are coded the same way, with their count.
///
///     header (128 bytes): `GraphHeader` (magic "TPHNSW\0\3", upperSize in bytes), u64 level0Bytes,
///                         u64 level0Links, u64 upperNodes, u32 relBytes (2 or 4), zero padding
///     upperIDs:     upperNodes u32, ascending: the nodes with a level ≥ 1, padded to 64 bytes
///     upperLevels:  upperNodes u8: each one's top level, padded
///     upperStarts:  (upperNodes + 1) u32: node upperIDs[i]'s lists are bytes starts[i] ..< starts[i+1]
///                   of the upper stream, padded
///     groupBases:   (nodeCount / 64 + 1) u64: where the lists of nodes 64·g ..< 64·(g+1) start, padded
///     rel:          (nodeCount + 1) offsets of relBytes each: node i's list starts at
///                   groupBases[i / 64] + rel[i] of the level-0 stream and ends where node i+1's starts; padded
///     level0:       level0Bytes: the level-0 lists (no count: a list runs to the next one's start), padded
///     upper:        upperBytes: per upper node, levels 1...L, each a varint count, then the list, padded
struct VarintGraphLayout {
    static let version: UInt8 = 3
    static let headerSize = 128
    /// Nodes per group base.
    static let group = 64

    let count: Int
    let upperNodes: Int
    let upperBytes: Int
    let level0Bytes: Int
    let relBytes: Int

    var groups: Int { count / VarintGraphLayout.group + 1 }
    var upperIDsOffset: Int { VarintGraphLayout.headerSize }
    var upperLevelsOffset: Int { align64(upperIDsOffset + 4 * upperNodes) }
    var upperStartsOffset: Int { align64(upperLevelsOffset + upperNodes) }
    var groupBasesOffset: Int { align64(upperStartsOffset + 4 * (upperNodes + 1)) }
    var relOffset: Int { align64(groupBasesOffset + 8 * groups) }
    var level0Offset: Int { align64(relOffset + relBytes * (count + 1)) }
    var upperOffset: Int { align64(level0Offset + level0Bytes) }
    var totalBytes: Int { align64(upperOffset + upperBytes) }

    /// 2-byte offsets within a group hold 63 full lists of 5-byte varints when M0 ≤ 208.
    static func relBytes(m0: Int) -> Int { (group - 1) * m0 * 5 < 1 << 16 ? 2 : 4 }
}

/// A version-3 graph read in place. Lists are decoded as they are read (unchecked: opening
/// validated every one, `VarintGraph+Validation`).
struct VarintGraph: StoredGraphLayout, @unchecked Sendable {
    let header: GraphHeader
    let layout: VarintGraphLayout
    let upperNodes: UpperNodeIndex
    /// Each upper node's top level.
    let upperLevels: UnsafePointer<UInt8>
    /// Where each group of 64 nodes' lists start (u64).
    let groupBases: UnsafeRawPointer
    /// Per-node offsets within a group (`relBytes` each).
    let rel: UnsafeRawPointer
    let level0: UnsafePointer<UInt8>
    let upper: UnsafePointer<UInt8>
    let linkCount: Int

    /// Reads the layout's own header fields after the common ones, then validates the block.
    init(header: GraphHeader, reader r: inout ByteReader, bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int) throws {
        self.header = header
        let l0Bytes = try r.size("HNSW level-0 bytes")
        let links = try r.size("HNSW level-0 link count")
        let un = try r.size("HNSW upper node count")
        let rb = Int(try r.u32())
        guard rb == 2 || rb == 4 else { throw r.fail("HNSW in-group offset width \(rb) not supported") }
        guard rb == 4 || VarintGraphLayout.relBytes(m0: header.m0) == 2 else {
            throw r.fail("HNSW in-group offset width \(rb) too narrow for M0 \(header.m0)")
        }
        guard links <= header.count * header.m0 else {
            throw r.fail("HNSW level-0 link count \(links) above \(header.count) nodes × \(header.m0)")
        }
        guard l0Bytes <= links * 10 else { throw r.fail("HNSW level-0 bytes \(l0Bytes) above 10 per link (\(links) links)") }
        guard un <= header.count else { throw r.fail("HNSW upper node count \(un) above \(header.count) nodes") }
        layout = VarintGraphLayout(count: header.count, upperNodes: un, upperBytes: header.upperSize, level0Bytes: l0Bytes, relBytes: rb)
        guard layout.totalBytes <= bytes.count else {
            throw r.fail("HNSW block shorter than its layout (\(layout.totalBytes) > \(bytes.count))")
        }
        let base = bytes.baseAddress!
        upperNodes = UpperNodeIndex(
            ids: (base + layout.upperIDsOffset).assumingMemoryBound(to: UInt32.self),
            starts: (base + layout.upperStartsOffset).assumingMemoryBound(to: UInt32.self), count: un)
        upperLevels = (base + layout.upperLevelsOffset).assumingMemoryBound(to: UInt8.self)
        groupBases = UnsafeRawPointer(base + layout.groupBasesOffset)
        rel = UnsafeRawPointer(base + layout.relOffset)
        level0 = (base + layout.level0Offset).assumingMemoryBound(to: UInt8.self)
        upper = (base + layout.upperOffset).assumingMemoryBound(to: UInt8.self)
        linkCount = links
        try validate { offset, reason in TidepoolError.corrupt(file: file, offset: fileOffset + offset, reason: reason) }
    }

    /// Where node `node`'s level-0 list starts in the stream (node `count` gives the stream's end).
    @inline(__always) func offset(_ node: Int) -> Int {
        let base = Int(
            truncatingIfNeeded: UInt64(littleEndian: groupBases.loadUnaligned(fromByteOffset: 8 &* (node >> 6), as: UInt64.self)))
        let r =
            layout.relBytes == 2
            ? Int(UInt16(littleEndian: rel.loadUnaligned(fromByteOffset: 2 &* node, as: UInt16.self)))
            : Int(UInt32(littleEndian: rel.loadUnaligned(fromByteOffset: 4 &* node, as: UInt32.self)))
        return base &+ r
    }

    func level(_ node: UInt32) -> Int { upperNodes.index(of: node).map { Int(upperLevels[$0]) } ?? 0 }

    @inline(__always) func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: header.m + 1) { buf in
            let out = buf.baseAddress!
            out[0] = 0
            guard let u = upperNodes.index(of: node), level <= Int(upperLevels[u]) else { return body(UnsafePointer(out)) }
            var i = Int(upperNodes.starts[u])
            let end = Int(upperNodes.starts[u + 1])
            for l in 1...level {
                let n = Int(VarintList.read(upper, &i))
                let got = VarintList.decode(upper, &i, end: end, count: n, node: node, into: out + 1)
                if l == level { out[0] = UInt32(got) }
            }
            return body(UnsafePointer(out))
        }
    }

    @inline(__always) func withLevel0<R>(_ node: UInt32, _ body: (LinkList) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: header.m0) { buf in
            var i = offset(Int(node))
            let n = VarintList.decode(level0, &i, end: offset(Int(node) &+ 1), count: nil, node: node, into: buf.baseAddress!)
            return body(LinkList(base: UnsafeRawPointer(buf.baseAddress!), count: n, stride: 4, mask: .max))
        }
    }

    @inline(__always) func prefetchLevel0(_ node: UInt32) {
        let start = offset(Int(node))
        tp_prefetch_range(level0 + start, offset(Int(node) &+ 1) &- start)
    }

    @inline(__always) func prefetchLevel0Index(_ node: UInt32) { tp_prefetch(rel + layout.relBytes &* Int(node)) }
}
