import Foundation

/// Segment file layout (little-endian; see docs/FORMAT.md):
///
///     header (64 bytes): magic "TPSEG\0\0\1", u32 version, u32 dimension, u8 metric, 3 reserved,
///                        u32 flags, u64 row count, u64 max sequence number, 20 reserved, u32 CRC32C(0..<60)
///     sections, each starting on a 64-byte boundary:
///         1 vectors     row count × dimension f32, row-major
///         2 ids         u64 offsets[rows + 1] (relative to the section), then encoded ids
///         3 attributes  u64 offsets[rows + 1], then encoded attribute maps
///         4 hnsw        an `HNSWLayout` graph block (absent for small segments)
///         5 text        a BM25 inverted index (`TextIndexFormat`; collections with a text index only)
///         6 sq8         SQ8 codes for the graph walk (`ScalarQuantizer`; quantization `sq8`, graph segments only)
///         7 f16         half-precision vectors for the graph walk (`HalfPrecision`; quantization `f16`)
///         8 ivf         an inverted file: centroids, posting lists, and their SQ8/PQ codes (`IVFFormat`)
///     section table: per section u32 kind, u32 reserved, u64 offset, u64 length, u32 CRC32C, u32 reserved
///     footer (32 bytes): u64 table offset, u32 section count, u32 CRC32C(table), u64 row count, magic "TPSEGEND"
enum SegmentFormat {
    static let magic: [UInt8] = Array("TPSEG".utf8) + [0, 0, 1]
    static let footerMagic: [UInt8] = Array("TPSEGEND".utf8)
    static let version: UInt32 = 1
    static let headerSize = 64
    static let footerSize = 32
    static let tableEntrySize = 32

    enum Kind: UInt32 {
        case vectors = 1, ids = 2, attributes = 3, hnsw = 4, text = 5, sq8 = 6, f16 = 7, ivf = 8
    }

    static func fileName(id: UInt64) -> String {
        let d = String(id)
        return String(repeating: "0", count: max(0, 12 - d.count)) + d + ".tps"
    }
}

/// What a new segment holds.
struct SegmentContents {
    let dimension: Int
    let metric: Metric
    let rowCount: Int
    /// Row-major vectors, `rowCount × dimension`.
    let vectors: UnsafePointer<Float>
    let ids: [DocumentID]
    let attributes: [[String: AttributeValue]]
    let maxSeq: UInt64

    /// The same rows in `order` (`order[new] = old`), vectors copied into `buffer` (`rowCount × dimension`).
    func reordered(_ order: [UInt32], into buffer: UnsafeMutablePointer<Float>) -> SegmentContents {
        for (new, old) in order.enumerated() {
            (buffer + new * dimension).update(from: vectors + Int(old) * dimension, count: dimension)
        }
        return SegmentContents(dimension: dimension, metric: metric, rowCount: rowCount, vectors: buffer,
                               ids: order.map { ids[Int($0)] }, attributes: order.map { attributes[Int($0)] }, maxSeq: maxSeq)
    }
}

/// Streams a segment file through the storage interface, computing section checksums on the way.
enum SegmentWriter {
    static func write(_ c: SegmentContents, graph: UnsafeRawBufferPointer?, text: [UInt8]? = nil,
                      codes: (SegmentFormat.Kind, [UInt8])? = nil, to name: String, storage: StorageBackend) throws -> Int {
        let out = try storage.createImmutable(name)
        do {
            var position = 0
            var table: [(SegmentFormat.Kind, Int, Int, UInt32)] = []

            func emit(_ bytes: UnsafeRawBufferPointer) throws {
                if bytes.count > 0 { try out.write(bytes) }
                position += bytes.count
            }
            func pad() throws {
                let r = position % 64
                if r != 0 { try [UInt8](repeating: 0, count: 64 - r).withUnsafeBytes { try emit($0) } }
            }
            func section(_ kind: SegmentFormat.Kind, _ parts: [UnsafeRawBufferPointer]) throws {
                try pad()
                let start = position
                var crc: UInt32 = 0
                for p in parts {
                    crc = crc32c(p, seed: crc)
                    try emit(p)
                }
                table.append((kind, start, position - start, crc))
            }

            var h = ByteWriter(capacity: 64)
            h.raw(SegmentFormat.magic)
            h.u32(SegmentFormat.version)
            h.u32(UInt32(c.dimension))
            h.u8(c.metric.code); h.u8(0); h.u8(0); h.u8(0)
            h.u32(graph == nil ? 0 : 1)
            h.u64(UInt64(c.rowCount))
            h.u64(c.maxSeq)
            while h.bytes.count < 60 { h.u8(0) }
            h.u32(crc32c(h.bytes))
            try h.bytes.withUnsafeBytes { try emit($0) }

            try section(.vectors, [UnsafeRawBufferPointer(start: c.vectors, count: c.rowCount * c.dimension * 4)])
            try encodeRecords(c.rowCount, { w, i in RecordCodec.encode(c.ids[i], into: &w) }) { try section(.ids, $0) }
            try encodeRecords(c.rowCount, { w, i in
                if !c.attributes[i].isEmpty { RecordCodec.encode(c.attributes[i], into: &w) }
            }) { try section(.attributes, $0) }
            if let graph { try section(.hnsw, [graph]) }
            if let text { try text.withUnsafeBytes { try section(.text, [$0]) } }
            if let (kind, bytes) = codes { try bytes.withUnsafeBytes { try section(kind, [$0]) } }

            try pad()
            let tableOffset = position
            var t = ByteWriter(capacity: table.count * 32)
            for (kind, off, len, crc) in table {
                t.u32(kind.rawValue); t.u32(0); t.u64(UInt64(off)); t.u64(UInt64(len)); t.u32(crc); t.u32(0)
            }
            try t.bytes.withUnsafeBytes { try emit($0) }
            var f = ByteWriter(capacity: 32)
            f.u64(UInt64(tableOffset))
            f.u32(UInt32(table.count))
            f.u32(crc32c(t.bytes))
            f.u64(UInt64(c.rowCount))
            f.raw(SegmentFormat.footerMagic)
            try f.bytes.withUnsafeBytes { try emit($0) }
            try out.commit()
            return position
        } catch {
            out.abort()
            throw error
        }
    }

    /// Encodes one record per row behind a u64 offset table.
    private static func encodeRecords(_ rows: Int, _ encode: (inout ByteWriter, Int) -> Void,
                                      _ body: ([UnsafeRawBufferPointer]) throws -> Void) throws {
        var offsets = [UInt64](repeating: 0, count: rows + 1)
        var data = ByteWriter(capacity: rows * 9)
        let base = UInt64((rows + 1) * 8)
        for i in 0..<rows {
            offsets[i] = base + UInt64(data.bytes.count)
            encode(&data, i)
        }
        offsets[rows] = base + UInt64(data.bytes.count)
        try offsets.withUnsafeBytes { o in try data.bytes.withUnsafeBytes { d in try body([o, d]) } }
    }
}
