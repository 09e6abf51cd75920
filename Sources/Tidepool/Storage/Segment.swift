import Foundation
import Metrics

/// An immutable, memory-mapped segment: vectors, ids, attributes and an optional
/// HNSW graph, searched in place. Opening validates the header, footer, section
/// table and record offsets (and, by default, every section checksum), so damage
/// is an error naming the file and offset rather than a crash or a wrong answer.
final class Segment: @unchecked Sendable {
    let id: UInt64
    let name: String
    let file: MappedFile
    let dimension: Int
    let metric: Metric
    let rowCount: Int
    let maxSeq: UInt64
    let vectors: UnsafePointer<Float>
    let graph: HNSWGraphView?
    let text: TextIndexView?
    /// What the graph walk reads instead of `vectors` (SQ8 codes or f16), per the quantization
    /// setting the segment was written under.
    let codes: CompressedVectors?
    var quantization: Quantization { codes?.quantization ?? .none }
    /// The inverted file, for IVF segments.
    let ivf: IVFView?
    let tombstones: Tombstones
    private let idOffsets: UnsafeRawPointer
    private let idBase: UnsafeRawPointer
    private let attrOffsets: UnsafeRawPointer
    private let attrBase: UnsafeRawPointer
    private let idSectionOffset: Int
    private let attrSectionOffset: Int
    private let sections: [(kind: UInt32, offset: Int, length: Int, crc: UInt32)]

    private let indexLock = NSLock()
    private var attributeIndexCache: AttributeIndex?
    private var bitmapCache: [Filter: Bitmap] = [:]

    /// The rows `filter` (validated) allows, cached: applications repeat their filters.
    func allowedRows(_ filter: Filter) throws -> Bitmap {
        if let b = indexLock.withLock({ bitmapCache[filter] }) {
            Counter(label: "tidepool_filter_cache_hits").increment()
            return b
        }
        Counter(label: "tidepool_filter_cache_misses").increment()
        let index = try attributeIndex()
        try index.prepare(filter)
        let b = index.evaluate(filter)
        indexLock.withLock {
            if bitmapCache.count >= 64 { bitmapCache.removeAll() }
            bitmapCache[filter] = b
        }
        return b
    }

    var path: String { file.name }

    /// The segment's attribute indexes, built from its attribute records on first use.
    func attributeIndex() throws -> AttributeIndex {
        indexLock.lock()
        defer { indexLock.unlock() }
        if let a = attributeIndexCache { return a }
        let a = AttributeIndex(rows: rowCount) { [unowned self] key, row in try self.attribute(row, key: key) }
        attributeIndexCache = a
        return a
    }
    var byteCount: Int { file.bytes.count }

    init(id: UInt64, name: String, storage: StorageBackend, dimension: Int, metric: Metric, verifyChecksums: Bool) throws {
        self.id = id
        self.name = name
        file = try storage.map(name)
        let bytes = file.bytes
        let path = file.name
        func corrupt(_ offset: Int, _ reason: String) -> TidepoolError { .corrupt(file: path, offset: offset, reason: reason) }

        guard bytes.count >= SegmentFormat.headerSize + SegmentFormat.footerSize else {
            throw corrupt(bytes.count, "segment file too short (\(bytes.count) bytes)")
        }
        var h = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[0..<64]), file: path)
        guard Array(try h.bytes(8, "magic")) == SegmentFormat.magic else { throw corrupt(0, "bad segment magic") }
        let storedHeaderCRC = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
        guard crc32c(UnsafeRawBufferPointer(rebasing: bytes[0..<60])) == storedHeaderCRC else {
            throw corrupt(60, "segment header checksum mismatch")
        }
        let version = try h.u32()
        guard version == SegmentFormat.version else { throw corrupt(8, "unsupported segment version \(version)") }
        let dim = Int(try h.u32())
        guard dim == dimension else { throw corrupt(12, "segment dimension \(dim) differs from the collection's \(dimension)") }
        let metricCode = try h.u8()
        guard let m = Metric(code: metricCode), m == metric else { throw corrupt(16, "segment metric \(metricCode) differs from the collection's") }
        _ = try h.bytes(3, "reserved")
        _ = try h.u32()
        let rows = try h.u64()
        maxSeq = try h.u64()
        self.dimension = dim
        self.metric = m

        let fo = bytes.count - SegmentFormat.footerSize
        var f = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[fo...]), file: path, fileOffset: fo)
        let tableOffset = try f.size("section table offset")
        let sectionCount = Int(try f.u32())
        let tableCRC = try f.u32()
        let footerRows = try f.u64()
        guard Array(try f.bytes(8, "footer magic")) == SegmentFormat.footerMagic else {
            throw corrupt(fo + 24, "bad segment footer magic (file truncated?)")
        }
        guard footerRows == rows, rows < UInt64(Int32.max) else { throw corrupt(fo + 16, "footer row count \(footerRows) differs from header \(rows)") }
        rowCount = Int(rows)
        guard sectionCount <= 16, tableOffset >= 64, tableOffset + sectionCount * 32 == fo else {
            throw corrupt(fo, "bad section table position \(tableOffset) / count \(sectionCount)")
        }
        let tableBytes = UnsafeRawBufferPointer(rebasing: bytes[tableOffset..<fo])
        guard crc32c(tableBytes) == tableCRC else { throw corrupt(tableOffset, "section table checksum mismatch") }
        var t = ByteReader(tableBytes, file: path, fileOffset: tableOffset)
        var secs: [(UInt32, Int, Int, UInt32)] = []
        for _ in 0..<sectionCount {
            let entryAt = tableOffset + t.position
            let kind = try t.u32(); _ = try t.u32()
            let off = try t.size("section offset"), len = try t.size("section length")
            let crc = try t.u32(); _ = try t.u32()
            guard off >= 64, off % 64 == 0, len >= 0, off + len <= tableOffset else {
                throw corrupt(entryAt, "section \(kind) range \(off)+\(len) is outside the file body")
            }
            secs.append((kind, off, len, crc))
        }
        let parsed = secs.map { (kind: $0.0, offset: $0.1, length: $0.2, crc: $0.3) }
        func find(_ k: SegmentFormat.Kind) -> (kind: UInt32, offset: Int, length: Int, crc: UInt32)? {
            parsed.first { $0.kind == k.rawValue }
        }
        guard let vec = find(.vectors), let ids = find(.ids), let attrs = find(.attributes) else {
            throw corrupt(tableOffset, "segment lacks a vectors, ids or attributes section")
        }
        let rowCount = Int(rows)
        guard vec.length == rowCount * dim * 4 else {
            throw corrupt(vec.offset, "vector section holds \(vec.length) bytes, expected \(rowCount * dim * 4)")
        }
        let base = bytes.baseAddress!
        vectors = (base + vec.offset).assumingMemoryBound(to: Float.self)

        func checkOffsets(_ s: (kind: UInt32, offset: Int, length: Int, crc: UInt32), _ what: String) throws -> UnsafeRawPointer {
            let tableLen = (rowCount + 1) * 8
            guard s.length >= tableLen else { throw corrupt(s.offset, "\(what) section shorter than its offset table") }
            let p = base + s.offset
            var prev = UInt64(tableLen)
            for i in 0...rowCount {
                let o = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
                if o < prev || o > UInt64(s.length) || (i == 0 && o != UInt64(tableLen)) {
                    throw corrupt(s.offset + i * 8, "\(what) offset \(o) out of order or out of range")
                }
                prev = o
            }
            return p
        }
        idSectionOffset = ids.offset
        attrSectionOffset = attrs.offset
        idOffsets = try checkOffsets(ids, "id")
        idBase = idOffsets
        attrOffsets = try checkOffsets(attrs, "attribute")
        attrBase = attrOffsets

        if verifyChecksums { try Segment.verify(sections: parsed, bytes: bytes, path: path) }

        if let g = find(.hnsw) {
            graph = try HNSWGraphView(bytes: UnsafeRawBufferPointer(start: base + g.offset, count: g.length),
                                      file: path, fileOffset: g.offset, expectedCount: Int(rows))
        } else {
            graph = nil
        }
        if let t = find(.text) {
            text = try TextIndexView(bytes: UnsafeRawBufferPointer(start: base + t.offset, count: t.length),
                                     file: path, fileOffset: t.offset, expectedRows: Int(rows))
        } else {
            text = nil
        }
        if let q = find(.sq8) {
            codes = .sq8(try SQ8View(bytes: UnsafeRawBufferPointer(start: base + q.offset, count: q.length),
                                     file: path, fileOffset: q.offset, dimension: dim, rows: Int(rows)))
        } else if let h = find(.f16) {
            codes = .f16(try F16View(bytes: UnsafeRawBufferPointer(start: base + h.offset, count: h.length),
                                     file: path, fileOffset: h.offset, dimension: dim, rows: Int(rows)))
        } else {
            codes = nil
        }
        if let v = find(.ivf) {
            ivf = try IVFView(bytes: UnsafeRawBufferPointer(start: base + v.offset, count: v.length),
                              file: path, fileOffset: v.offset, dimension: dim, rows: Int(rows))
        } else {
            ivf = nil
        }
        sections = parsed
        tombstones = Tombstones(count: Int(rows))
    }

    private static func verify(sections: [(kind: UInt32, offset: Int, length: Int, crc: UInt32)],
                               bytes: UnsafeRawBufferPointer, path: String) throws {
        for s in sections {
            let b = UnsafeRawBufferPointer(rebasing: bytes[s.offset..<(s.offset + s.length)])
            if crc32c(b) != s.crc {
                throw TidepoolError.corrupt(file: path, offset: s.offset, reason: "checksum mismatch in section \(s.kind) (\(s.length) bytes)")
            }
        }
    }

    /// Bytes of one section (0 when the segment has none).
    func sectionLength(_ kind: SegmentFormat.Kind) -> Int { sections.first { $0.kind == kind.rawValue }?.length ?? 0 }

    /// Recomputes every section checksum.
    func verifyChecksums() throws { try Segment.verify(sections: sections, bytes: file.bytes, path: path) }

    @inline(__always) func vector(_ row: Int) -> UnsafePointer<Float> { vectors + row * dimension }

    private func record(_ table: UnsafeRawPointer, _ row: Int, sectionOffset: Int) -> ByteReader {
        let a = Int(UInt64(littleEndian: table.loadUnaligned(fromByteOffset: row * 8, as: UInt64.self)))
        let b = Int(UInt64(littleEndian: table.loadUnaligned(fromByteOffset: row * 8 + 8, as: UInt64.self)))
        return ByteReader(UnsafeRawBufferPointer(start: table + a, count: b - a), file: path, fileOffset: sectionOffset + a)
    }

    func documentID(_ row: Int) throws -> DocumentID {
        var r = record(idOffsets, row, sectionOffset: idSectionOffset)
        return try RecordCodec.decodeID(&r)
    }

    func attributes(_ row: Int) throws -> [String: AttributeValue] {
        var r = record(attrOffsets, row, sectionOffset: attrSectionOffset)
        if r.remaining == 0 { return [:] }
        return try RecordCodec.decodeAttributes(&r)
    }

    /// One attribute of a row, read without decoding the rest of its record.
    func attribute(_ row: Int, key: [UInt8]) throws -> AttributeValue? {
        var r = record(attrOffsets, row, sectionOffset: attrSectionOffset)
        return try RecordCodec.decodeAttribute(&r, key: key)
    }

    func vectorArray(_ row: Int) -> [Float] { Array(UnsafeBufferPointer(start: vector(row), count: dimension)) }
}
