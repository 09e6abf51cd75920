/// Segment file layout (little-endian; see docs/FORMAT.md):
///
///     header (64 bytes, `SegmentHeader`)
///     sections, each starting on a 64-byte boundary:
///         1 vectors     row count × dimension f32, row-major
///         2 ids         u64 offsets[rows + 1] (relative to the section), then encoded ids
///         3 attributes  u64 offsets[rows + 1], then encoded attribute maps
///         4 hnsw        a stored graph (`StoredGraph`; absent for small segments)
///         5 text        a BM25 inverted index (`TextIndexFormat`; collections with a text index only)
///         6 sq8         SQ8 codes for the graph walk (`ScalarQuantizer`; quantization `sq8`, graph segments only)
///         7 f16         half-precision vectors for the graph walk (`HalfPrecision`; quantization `f16`)
///         8 ivf         an inverted file: centroids, posting lists, and their SQ8/PQ/RaBitQ codes (`IVFFormat`)
///         9 vectorless  the rows without a vector: a bitmap, u64 words (only when there are any;
///                       their rows in `vectors` are zeros, and no graph links them)
///     section table: one `SectionEntry` per section
///     footer (32 bytes, `SegmentFooter`)
enum SegmentFormat {
    static let version: UInt32 = 1

    enum Kind: UInt32 {
        case vectors = 1, ids = 2, attributes = 3, hnsw = 4, text = 5, sq8 = 6, f16 = 7, ivf = 8, vectorless = 9
    }

    static func fileName(id: UInt64) -> String {
        let d = String(id)
        return String(repeating: "0", count: max(0, 12 - d.count)) + d + ".tps"
    }
}

/// The first 64 bytes: magic "TPSEG\0\0\1", u32 version, u32 dimension, u8 metric, 3 reserved,
/// u32 flags (bit 0: the segment has a graph section; bit 1: a vectorless section, which code
/// older than it refuses rather than returning those rows to vector searches), u64 row count, u64 max sequence number,
/// 20 reserved, u32 CRC32C of bytes 0..<60. Reserved bytes are written as zero, and anything else
/// is damage (the checksum alone cannot tell a future field from a flipped bit it covers).
struct SegmentHeader: Equatable {
    static let magic: [UInt8] = Array("TPSEG".utf8) + [0, 0, 1]
    static let size = 64
    static let hasGraphFlag: UInt32 = 1
    static let hasVectorlessFlag: UInt32 = 2
    // Where fields sit, for messages about them.
    static let versionOffset = 8, dimensionOffset = 12, metricOffset = 16, flagsOffset = 20, rowsOffset = 24
    static let reservedOffset = 40, checksumOffset = 60

    var dimension: Int
    var metric: Metric
    var flags: UInt32
    var rows: Int
    var maxSeq: UInt64

    func encoded() -> [UInt8] {
        var h = ByteWriter(capacity: SegmentHeader.size)
        h.raw(SegmentHeader.magic)
        h.u32(SegmentFormat.version)
        h.u32(UInt32(dimension))
        h.u8(metric.code); h.u8(0); h.u8(0); h.u8(0)
        h.u32(flags)
        h.u64(UInt64(rows))
        h.u64(maxSeq)
        while h.bytes.count < SegmentHeader.checksumOffset { h.u8(0) }
        h.u32(crc32c(h.bytes))
        return h.bytes
    }

    /// Reads and checks the header of a file of at least `size` bytes.
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String, dimension: Int, metric: Metric) throws -> SegmentHeader {
        func corrupt(_ offset: Int, _ reason: String) -> TidepoolError { .corrupt(file: file, offset: offset, reason: reason) }
        let head = UnsafeRawBufferPointer(rebasing: bytes[0..<size])
        var h = ByteReader(head, file: file)
        guard Array(try h.bytes(8, "magic")) == magic else { throw corrupt(0, "bad segment magic") }
        let storedCRC = UInt32(littleEndian: head.loadUnaligned(fromByteOffset: checksumOffset, as: UInt32.self))
        guard crc32c(UnsafeRawBufferPointer(rebasing: head[0..<checksumOffset])) == storedCRC else {
            throw corrupt(checksumOffset, "segment header checksum mismatch")
        }
        let version = try h.u32()
        guard version == SegmentFormat.version else { throw corrupt(versionOffset, "unsupported segment version \(version)") }
        let dim = Int(try h.u32())
        guard dim == dimension else {
            throw corrupt(dimensionOffset, "segment dimension \(dim) differs from the collection's \(dimension)")
        }
        let metricCode = try h.u8()
        guard let m = Metric(code: metricCode), m == metric else {
            throw corrupt(metricOffset, "segment metric \(metricCode) differs from the collection's")
        }
        guard try h.bytes(3, "reserved").allSatisfy({ $0 == 0 }) else {
            throw corrupt(metricOffset + 1, "segment header reserved bytes are not zero")
        }
        let flags = try h.u32()
        guard flags & ~(hasGraphFlag | hasVectorlessFlag) == 0 else { throw corrupt(flagsOffset, "unknown segment flags \(flags)") }
        let rows = try h.u64()
        let maxSeq = try h.u64()
        guard try h.bytes(checksumOffset - h.position, "reserved").allSatisfy({ $0 == 0 }) else {
            throw corrupt(reservedOffset, "segment header reserved bytes are not zero")
        }
        guard rows < UInt64(Int32.max) else { throw corrupt(rowsOffset, "segment row count \(rows) too large") }
        return SegmentHeader(dimension: dim, metric: m, flags: flags, rows: Int(rows), maxSeq: maxSeq)
    }
}

/// The last 32 bytes: u64 section table offset, u32 section count, u32 CRC32C(table), u64 row
/// count (again, so a truncated file is told from a short one), magic "TPSEGEND".
struct SegmentFooter: Equatable {
    static let magic: [UInt8] = Array("TPSEGEND".utf8)
    static let size = 32
    static let maxSections = 16

    var tableOffset: Int
    var sectionCount: Int
    var tableChecksum: UInt32
    var rows: Int

    func encoded() -> [UInt8] {
        var f = ByteWriter(capacity: SegmentFooter.size)
        f.u64(UInt64(tableOffset))
        f.u32(UInt32(sectionCount))
        f.u32(tableChecksum)
        f.u64(UInt64(rows))
        f.raw(SegmentFooter.magic)
        return f.bytes
    }

    /// Reads the footer of `bytes` and checks it against the header's row count and the file's length.
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String, headerRows: Int) throws -> SegmentFooter {
        let fo = bytes.count - size
        func corrupt(_ offset: Int, _ reason: String) -> TidepoolError { .corrupt(file: file, offset: offset, reason: reason) }
        var f = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[fo...]), file: file, fileOffset: fo)
        let tableOffset = try f.size("section table offset")
        let count = Int(try f.u32())
        let crc = try f.u32()
        let rows = try f.u64()
        guard Array(try f.bytes(8, "footer magic")) == magic else { throw corrupt(fo + 24, "bad segment footer magic (file truncated?)") }
        guard rows == UInt64(headerRows) else { throw corrupt(fo + 16, "footer row count \(rows) differs from header \(headerRows)") }
        guard count <= maxSections, tableOffset >= SegmentHeader.size, tableOffset + count * SectionEntry.size == fo else {
            throw corrupt(fo, "bad section table position \(tableOffset) / count \(count)")
        }
        return SegmentFooter(tableOffset: tableOffset, sectionCount: count, tableChecksum: crc, rows: headerRows)
    }
}

/// One section table entry (32 bytes): u32 kind, u32 reserved, u64 offset, u64 length, u32
/// CRC32C of the section, u32 reserved.
struct SectionEntry: Equatable {
    static let size = 32

    var kind: UInt32
    var offset: Int
    var length: Int
    var checksum: UInt32

    func encode(into w: inout ByteWriter) {
        w.u32(kind); w.u32(0); w.u64(UInt64(offset)); w.u64(UInt64(length)); w.u32(checksum); w.u32(0)
    }

    /// Reads and checks the table at `footer.tableOffset`: its checksum, and every section starting
    /// on a 64-byte boundary inside the file's body.
    static func decodeTable(_ bytes: UnsafeRawBufferPointer, file: String, footer: SegmentFooter) throws -> [SectionEntry] {
        let tableBytes = UnsafeRawBufferPointer(rebasing: bytes[footer.tableOffset..<(footer.tableOffset + footer.sectionCount * size)])
        guard crc32c(tableBytes) == footer.tableChecksum else {
            throw TidepoolError.corrupt(file: file, offset: footer.tableOffset, reason: "section table checksum mismatch")
        }
        var t = ByteReader(tableBytes, file: file, fileOffset: footer.tableOffset)
        var out: [SectionEntry] = []
        for _ in 0..<footer.sectionCount {
            let entryAt = footer.tableOffset + t.position
            let kind = try t.u32(); _ = try t.u32()
            let off = try t.size("section offset"), len = try t.size("section length")
            let crc = try t.u32(); _ = try t.u32()
            guard off >= SegmentHeader.size, off % 64 == 0, off + len <= footer.tableOffset else {
                throw TidepoolError.corrupt(
                    file: file, offset: entryAt, reason: "section \(kind) range \(off)+\(len) is outside the file body")
            }
            out.append(SectionEntry(kind: kind, offset: off, length: len, checksum: crc))
        }
        return out
    }

    /// Recomputes the section's checksum.
    func verify(_ bytes: UnsafeRawBufferPointer, file: String) throws {
        if crc32c(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])) != checksum {
            throw TidepoolError.corrupt(file: file, offset: offset, reason: "checksum mismatch in section \(kind) (\(length) bytes)")
        }
    }
}
