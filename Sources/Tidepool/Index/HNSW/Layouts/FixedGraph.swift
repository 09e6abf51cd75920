import TidepoolKernels

/// Graph layout version 1: fixed-size lists, the layout `HNSWBuilder` works in (threads insert
/// into their slots concurrently). Segments written before version 2 hold it; it is still read.
///
///     header (64 bytes): `GraphHeader` (magic "TPHNSW\0\1", upperSize in words), 24 reserved bytes
///     levels:        u8 per node, padded to 64 bytes
///     upperOffsets:  u32 per node: first word of its upper-level lists (0xFFFFFFFF when level 0 only), padded
///     level0:        per node (m0 + 1) u32: count, then neighbours, padded to 64 bytes
///     upper:         per node with level L ≥ 1, L lists of (m + 1) u32 (levels 1...L)
struct FixedGraphLayout {
    static let version: UInt8 = 1
    static let headerSize = 64
    static let none: UInt32 = .max

    let m: Int
    let m0: Int
    let count: Int
    let upperWords: Int

    var levelsOffset: Int { FixedGraphLayout.headerSize }
    var upperOffsetsOffset: Int { align64(levelsOffset + count) }
    var level0Offset: Int { align64(upperOffsetsOffset + 4 * count) }
    var upperOffset: Int { align64(level0Offset + 4 * count * (m0 + 1)) }
    var totalBytes: Int { upperOffset + 4 * upperWords }
}

/// A version-1 graph read in place.
struct FixedGraph: StoredGraphLayout, @unchecked Sendable {
    let header: GraphHeader
    let layout: FixedGraphLayout
    let levels: UnsafePointer<UInt8>
    let upperOffsets: UnsafePointer<UInt32>
    let level0: UnsafePointer<UInt32>
    let upper: UnsafePointer<UInt32>
    let linkCount: Int

    /// Parses and validates a block whose common header is already read (`FixedGraph+Validation`).
    init(header: GraphHeader, bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int) throws {
        self.header = header
        layout = FixedGraphLayout(m: header.m, m0: header.m0, count: header.count, upperWords: header.upperSize)
        guard layout.totalBytes <= bytes.count else {
            throw TidepoolError.corrupt(
                file: file, offset: fileOffset + GraphHeader.commonSize,
                reason: "HNSW block shorter than its layout (\(layout.totalBytes) > \(bytes.count))")
        }
        let base = bytes.baseAddress!
        levels = (base + layout.levelsOffset).assumingMemoryBound(to: UInt8.self)
        upperOffsets = (base + layout.upperOffsetsOffset).assumingMemoryBound(to: UInt32.self)
        level0 = (base + layout.level0Offset).assumingMemoryBound(to: UInt32.self)
        upper = (base + layout.upperOffset).assumingMemoryBound(to: UInt32.self)
        linkCount = try FixedGraph.validate(
            header: header, layout: layout, levels: levels, upperOffsets: upperOffsets,
            level0: level0, upper: upper
        ) { offset, reason in
            TidepoolError.corrupt(file: file, offset: fileOffset + offset, reason: reason)
        }
    }

    func level(_ node: UInt32) -> Int { Int(levels[Int(node)]) }

    @inline(__always) func level0List(_ node: UInt32) -> UnsafePointer<UInt32> { level0 + Int(node) * (header.m0 + 1) }

    /// `node`'s list at `level` ≥ 1 (count, then neighbours); empty when it has none.
    @inline(__always) func upperList(_ node: UInt32, level: Int) -> UnsafePointer<UInt32> {
        let start = upperOffsets[Int(node)]
        guard start != FixedGraphLayout.none else { return UnsafePointer(emptyLinkList) }
        return upper + Int(start) + (level - 1) * (header.m + 1)
    }

    @inline(__always) func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R {
        body(upperList(node, level: level))
    }
    @inline(__always) func withLevel0<R>(_ node: UInt32, _ body: (LinkList) -> R) -> R { body(LinkList(fixed: level0List(node))) }
    @inline(__always) func prefetchLevel0(_ node: UInt32) { tp_prefetch_range(level0List(node), (header.m0 + 1) * 4) }
    @inline(__always) func prefetchLevel0Index(_ node: UInt32) {}
}

extension HNSWBuilder {
    /// The builder's block as a stored graph of layout version 1 (header filled in), which
    /// segments written before version 2 hold; kept so tests can check that they are still read.
    func storedVersion1() -> UnsafeRawBufferPointer {
        var w = ByteWriter(capacity: FixedGraphLayout.headerSize)
        let (ep, top) = entry()
        GraphHeader(
            version: FixedGraphLayout.version, m: m, m0: m0, maxLevel: top, entryPoint: ep, count: count,
            upperSize: layout.upperWords
        ).encode(into: &w)
        w.pad(toMultipleOf: FixedGraphLayout.headerSize)
        w.bytes.withUnsafeBytes { block.copyMemory(from: $0.baseAddress!, byteCount: FixedGraphLayout.headerSize) }
        return UnsafeRawBufferPointer(start: block, count: layout.totalBytes)
    }
}
