import Foundation

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
    /// The rows without a vector (their rows in `vectors` are zeros); nil when every row has one.
    var vectorless: Bitmap? = nil

    /// Rows that have a vector.
    var vectorRowCount: Int { rowCount - (vectorless?.cardinality ?? 0) }

    /// Per row, 1 for a row without a vector, for `HNSWBuilder`'s `skip`; nil when there are none.
    /// The caller deallocates it.
    func vectorlessFlags() -> UnsafeMutablePointer<UInt8>? {
        guard let vectorless else { return nil }
        let flags = UnsafeMutablePointer<UInt8>.allocate(capacity: max(rowCount, 1))
        flags.initialize(repeating: 0, count: max(rowCount, 1))
        vectorless.forEach { flags[$0] = 1 }
        return flags
    }

    /// The same rows in `order` (`order[new] = old`), vectors copied into `buffer` (`rowCount × dimension`).
    func reordered(_ order: [UInt32], into buffer: UnsafeMutablePointer<Float>) -> SegmentContents {
        for (new, old) in order.enumerated() {
            (buffer + new * dimension).update(from: vectors + Int(old) * dimension, count: dimension)
        }
        return SegmentContents(
            dimension: dimension, metric: metric, rowCount: rowCount, vectors: buffer,
            ids: order.map { ids[Int($0)] }, attributes: order.map { attributes[Int($0)] }, maxSeq: maxSeq,
            vectorless: vectorless.map { v in
                Bitmap(count: rowCount, rows: order.indices.lazy.filter { v.contains(Int(order[$0])) }.map(UInt32.init))
            })
    }
}

/// Streams a segment file through the storage interface, computing section checksums on the way.
enum SegmentWriter {
    static func write(
        _ c: SegmentContents, graph: UnsafeRawBufferPointer?, text: [UInt8]? = nil,
        codes: (SegmentFormat.Kind, [UInt8])? = nil, to name: String, storage: any StorageBackend
    ) throws -> Int {
        let out = try storage.createImmutable(name)
        do {
            var position = 0
            var table: [SectionEntry] = []

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
                table.append(SectionEntry(kind: kind.rawValue, offset: start, length: position - start, checksum: crc))
            }

            let vectorless = c.vectorless.flatMap { $0.cardinality > 0 ? $0 : nil }
            let flags = (graph == nil ? 0 : SegmentHeader.hasGraphFlag) | (vectorless == nil ? 0 : SegmentHeader.hasVectorlessFlag)
            let header = SegmentHeader(dimension: c.dimension, metric: c.metric, flags: flags, rows: c.rowCount, maxSeq: c.maxSeq)
            try header.encoded().withUnsafeBytes { try emit($0) }

            try section(.vectors, [UnsafeRawBufferPointer(start: c.vectors, count: c.rowCount * c.dimension * 4)])
            try encodeRecords(c.rowCount, { w, i in RecordCodec.encode(c.ids[i], into: &w) }) { try section(.ids, $0) }
            try encodeRecords(
                c.rowCount,
                { w, i in
                    if !c.attributes[i].isEmpty { RecordCodec.encode(c.attributes[i], into: &w) }
                }
            ) { try section(.attributes, $0) }
            if let graph { try section(.hnsw, [graph]) }
            if let text { try text.withUnsafeBytes { try section(.text, [$0]) } }
            if let (kind, bytes) = codes { try bytes.withUnsafeBytes { try section(kind, [$0]) } }
            if let vectorless {
                let words = vectorless.words.map(\.littleEndian)
                try words.withUnsafeBytes { try section(.vectorless, [$0]) }
            }

            try pad()
            let tableOffset = position
            var t = ByteWriter(capacity: table.count * SectionEntry.size)
            for entry in table { entry.encode(into: &t) }
            try t.bytes.withUnsafeBytes { try emit($0) }
            let footer = SegmentFooter(
                tableOffset: tableOffset, sectionCount: table.count, tableChecksum: crc32c(t.bytes), rows: c.rowCount)
            try footer.encoded().withUnsafeBytes { try emit($0) }
            try out.commit()
            return position
        } catch {
            out.abort()
            throw error
        }
    }

    /// Encodes one record per row behind a u64 offset table.
    private static func encodeRecords(
        _ rows: Int, _ encode: (inout ByteWriter, Int) -> Void,
        _ body: ([UnsafeRawBufferPointer]) throws -> Void
    ) throws {
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
