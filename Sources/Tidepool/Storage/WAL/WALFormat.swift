import Foundation

/// One logged operation.
enum WALOperation: Sendable {
    /// Documents to insert or replace (vectors already validated and, for cosine, normalized).
    case upsert([Document])
    case delete([DocumentID])

    /// 1: an upsert whose documents all have vectors; 3: one with a document without a vector
    /// (a frame older code refuses rather than misreads); 2: a delete.
    var typeCode: UInt8 {
        switch self {
        case .upsert(let docs): return docs.contains { !$0.hasVector } ? 3 : 1
        case .delete: return 2
        }
    }
}

/// WAL file layout (all integers little-endian):
///
///     file header (32 bytes, `WALFileHeader`): magic "TPWAL\0\0\1", u32 version, u32 dimension,
///                             u64 first sequence number, u32 reserved (0), u32 CRC32C of bytes 0..<28
///     frames: u32 body length, u32 CRC32C(body), body = u64 sequence number, u8 type, payload
///
/// An upsert payload (type 1) is u32 count, then per document: id, `dimension` f32, attributes.
/// Type 3, an upsert holding documents without vectors: per document id, u8 1 and `dimension`
/// f32 (or u8 0 and no vector), attributes.
/// A delete payload is u32 count, then ids.
enum WALFormat {
    static let frameHeaderSize = 8
    /// A frame body's sequence number and type.
    static let frameBodyPrefix = 9
    static let maxFrameBody = 1 << 30

    static func fileName(firstSeq: UInt64) -> String {
        let digits = String(firstSeq)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".wal"
    }

    static func firstSeq(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(".wal") else { return nil }
        return UInt64(name.dropLast(4))
    }

    static func encodePayload(_ op: WALOperation, dimension: Int) -> [UInt8] {
        switch op {
        case .upsert(let docs):
            let flagged = op.typeCode == 3
            var w = ByteWriter(capacity: docs.count * (dimension * 4 + 32))
            w.u32(UInt32(docs.count))
            for d in docs {
                RecordCodec.encode(d.id, into: &w)
                if flagged { w.u8(d.hasVector ? 1 : 0) }
                d.vector.withUnsafeBufferPointer { w.floats($0) }
                RecordCodec.encode(d.attributes, into: &w)
            }
            return w.bytes
        case .delete(let ids):
            var w = ByteWriter(capacity: ids.count * 12 + 4)
            w.u32(UInt32(ids.count))
            for id in ids { RecordCodec.encode(id, into: &w) }
            return w.bytes
        }
    }

    /// Appends a complete frame for `seq` to `out`.
    static func appendFrame(seq: UInt64, type: UInt8, payload: [UInt8], to out: inout [UInt8]) {
        var body = ByteWriter(capacity: frameBodyPrefix)
        body.u64(seq)
        body.u8(type)
        var crc = crc32c(body.bytes)
        crc = payload.withUnsafeBytes { crc32c($0, seed: crc) }
        var head = ByteWriter(capacity: frameHeaderSize)
        head.u32(UInt32(frameBodyPrefix + payload.count))
        head.u32(crc)
        out.append(contentsOf: head.bytes)
        out.append(contentsOf: body.bytes)
        out.append(contentsOf: payload)
    }

    static func decodePayload(type: UInt8, _ r: inout ByteReader, dimension: Int) throws -> WALOperation {
        let count = Int(try r.u32("record count"))
        guard count <= r.remaining else { throw r.fail("record count \(count) exceeds the frame") }
        switch type {
        case 1, 3:
            var docs: [Document] = []
            docs.reserveCapacity(count)
            for _ in 0..<count {
                let id = try RecordCodec.decodeID(&r)
                if type == 3 {
                    switch try r.u8("vector presence") {
                    case 0:
                        docs.append(Document(id: id, attributes: try RecordCodec.decodeAttributes(&r)))
                        continue
                    case 1: break
                    case let p: throw r.fail("unknown vector presence \(p)")
                    }
                }
                let raw = try r.bytes(dimension * 4, "vector")
                let v = [Float](unsafeUninitializedCapacity: dimension) { buf, n in
                    UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw)
                    n = dimension
                }
                let attrs = try RecordCodec.decodeAttributes(&r)
                docs.append(Document(id: id, vector: v, attributes: attrs))
            }
            return .upsert(docs)
        case 2:
            var ids: [DocumentID] = []
            ids.reserveCapacity(count)
            for _ in 0..<count { ids.append(try RecordCodec.decodeID(&r)) }
            return .delete(ids)
        default:
            throw r.fail("unknown WAL frame type \(type)")
        }
    }
}

/// The header a WAL file starts with; checksummed, so a damaged one is never taken for another.
struct WALFileHeader: Equatable {
    static let magic: [UInt8] = Array("TPWAL".utf8) + [0, 0, 1]
    static let version: UInt32 = 1
    static let size = 32
    /// Where fields sit, for messages about them.
    static let dimensionOffset = 12
    static let firstSeqOffset = 16
    static let reservedOffset = 24

    var dimension: Int
    var firstSeq: UInt64

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: WALFileHeader.size)
        w.raw(WALFileHeader.magic)
        w.u32(WALFileHeader.version)
        w.u32(UInt32(dimension))
        w.u64(firstSeq)
        w.u32(0)  // reserved
        w.u32(crc32c(w.bytes))
        return w.bytes
    }

    /// Reads and checks a header (magic, checksum, version, reserved zero) at the start of `bytes`.
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String) throws -> WALFileHeader {
        var r = ByteReader(bytes, file: file)
        guard bytes.count >= size else { throw r.fail("WAL header truncated") }
        guard Array(try r.bytes(8, "WAL magic")).elementsEqual(magic) else { throw ByteReader(bytes, file: file).fail("bad WAL magic") }
        let version = try r.u32(), dimension = try r.u32(), firstSeq = try r.u64(), reserved = try r.u32()
        let stored = try r.u32()
        guard crc32c(UnsafeRawBufferPointer(rebasing: bytes[0..<(size - 4)])) == stored else {
            throw ByteReader(bytes, file: file).fail("WAL header checksum mismatch")
        }
        guard version == WALFileHeader.version else { throw ByteReader(bytes, file: file).fail("unsupported WAL version \(version)") }
        guard reserved == 0 else {
            throw TidepoolError.corrupt(file: file, offset: reservedOffset, reason: "WAL header reserved field is not zero")
        }
        return WALFileHeader(dimension: Int(dimension), firstSeq: firstSeq)
    }
}
