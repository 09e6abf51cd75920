import Foundation

/// A small record file: 8-byte magic, u32 format version, u32 payload length, u32
/// CRC32C(payload), u32 reserved (zero), then a JSON payload. The manifest, version records and
/// backup manifests use it; damage is reported with the file and the offset of the field that is wrong.
enum ChecksummedJSON {
    static let headerSize = 24
    static let versionOffset = 8, lengthOffset = 12, checksumOffset = 16, reservedOffset = 20

    static func encode<T: Encodable>(_ value: T, magic: [UInt8], version: UInt32) throws -> [UInt8] {
        precondition(magic.count == 8, "magic is 8 bytes")
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let payload = [UInt8](try enc.encode(value))
        var w = ByteWriter(capacity: payload.count + headerSize)
        w.raw(magic)
        w.u32(version)
        w.u32(UInt32(payload.count))
        w.u32(crc32c(payload))
        w.u32(0)
        w.raw(payload)
        return w.bytes
    }

    static func decode<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], magic: [UInt8], versions: ClosedRange<UInt32>, file: String, what: String
    ) throws -> T {
        try bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw, file: file)
            guard raw.count >= headerSize else { throw r.fail("\(what) too short (\(raw.count) bytes)") }
            guard Array(try r.bytes(8, "magic")) == magic else {
                throw TidepoolError.corrupt(file: file, offset: 0, reason: "bad \(what) magic")
            }
            let v = try r.u32()
            guard versions.contains(v) else {
                throw TidepoolError.corrupt(file: file, offset: versionOffset, reason: "unsupported \(what) version \(v)")
            }
            let len = Int(try r.u32())
            let crc = try r.u32()
            // Reserved, written as zero: anything else is damage (the checksum covers only the payload).
            guard try r.u32() == 0 else {
                throw TidepoolError.corrupt(file: file, offset: reservedOffset, reason: "\(what) reserved field is not zero")
            }
            guard len == r.remaining else {
                throw TidepoolError.corrupt(
                    file: file, offset: lengthOffset, reason: "\(what) length \(len) but \(r.remaining) bytes follow")
            }
            let payload = try r.bytes(len, "payload")
            guard crc32c(payload) == crc else {
                throw TidepoolError.corrupt(file: file, offset: headerSize, reason: "\(what) checksum mismatch")
            }
            do {
                return try JSONDecoder().decode(T.self, from: Data(payload))
            } catch {
                throw TidepoolError.corrupt(file: file, offset: headerSize, reason: "\(what) JSON does not decode: \(error)")
            }
        }
    }
}
