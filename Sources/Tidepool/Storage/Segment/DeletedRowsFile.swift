import Foundation

/// A segment's persisted deletions as a small immutable file beside it (`segments/`), named by
/// the manifest (`Manifest.SegmentEntry.deletedFile`) once they outgrow `inlineLimit`, so the
/// manifest stays a few KiB however many deletions pile up. A later flush that persists more
/// deletions writes a new file; the one it replaces is garbage like a replaced segment.
///
/// Layout, little-endian: magic `TPDELRW1` (8 bytes) · version u32 · segment id u64 · row count
/// u32 · the rows, u32 each, ascending · CRC-32C of everything before it, u32.
struct DeletedRowsFile: Equatable {
    static let magic: [UInt8] = Array("TPDELRW1".utf8)
    static let version: UInt32 = 1
    static let headerSize = 24
    /// Up to this many deleted rows stay inline in the manifest.
    static let inlineLimit = 32

    var segmentID: UInt64
    var rows: [UInt32]

    /// `<segment id>-<flushed sequence number>-<nonce>.del`, in hex. The random nonce keeps a
    /// flush retried after a failed manifest commit from colliding with its own earlier upload
    /// (object storage creates files only if absent, and would take that for another writer's).
    static func fileName(segmentID: UInt64, flushedSeq: UInt64, nonce: UInt64 = .random(in: 0...UInt64.max)) -> String {
        hex16(segmentID) + "-" + hex16(flushedSeq) + "-" + hex16(nonce) + ".del"
    }

    private static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerSize + rows.count * 4 + 4)
        w.raw(Self.magic)
        w.u32(Self.version)
        w.u64(segmentID)
        w.u32(UInt32(rows.count))
        for r in rows { w.u32(r) }
        w.u32(crc32c(w.bytes))
        return w.bytes
    }

    /// Decodes `bytes` read from `file`, checking magic, version, length, order and checksum.
    static func decode(_ bytes: [UInt8], file: String) throws -> DeletedRowsFile {
        try bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw, file: file)
            guard raw.count >= headerSize + 4 else { throw r.fail("deleted-rows file too short (\(raw.count) bytes)") }
            guard Array(try r.bytes(8, "magic")) == magic else {
                throw TidepoolError.corrupt(file: file, offset: 0, reason: "bad deleted-rows file magic")
            }
            let v = try r.u32("version")
            guard v == version else {
                throw TidepoolError.corrupt(file: file, offset: 8, reason: "unsupported deleted-rows file version \(v)")
            }
            let segmentID = try r.u64("segment id")
            let count = Int(try r.u32("row count"))
            guard raw.count == headerSize + count * 4 + 4 else {
                throw TidepoolError.corrupt(
                    file: file, offset: 20, reason: "deleted-rows file says \(count) rows but is \(raw.count) bytes long")
            }
            let stored = raw.loadUnaligned(fromByteOffset: raw.count - 4, as: UInt32.self).littleEndian
            guard crc32c(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 4)])) == stored else {
                throw TidepoolError.corrupt(file: file, offset: raw.count - 4, reason: "deleted-rows file checksum mismatch")
            }
            var rows: [UInt32] = []
            rows.reserveCapacity(count)
            for i in 0..<count {
                let row = try r.u32("row")
                if let last = rows.last, row <= last {
                    throw TidepoolError.corrupt(file: file, offset: headerSize + i * 4, reason: "deleted rows out of order")
                }
                rows.append(row)
            }
            return DeletedRowsFile(segmentID: segmentID, rows: rows)
        }
    }
}
