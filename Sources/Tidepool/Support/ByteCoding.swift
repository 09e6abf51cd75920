import Foundation

/// Appends little-endian values to a growing byte buffer.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func floats(_ v: UnsafeBufferPointer<Float>) {
        // Little-endian hosts only (x86-64, arm64): the bytes are the floats.
        bytes.append(contentsOf: UnsafeRawBufferPointer(v))
    }
    mutating func raw(_ v: UnsafeRawBufferPointer) { bytes.append(contentsOf: v) }
    mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            u32(UInt32(u.count)); bytes.append(contentsOf: u)
        }
    }
    mutating func pad(toMultipleOf n: Int) {
        let r = bytes.count % n
        if r != 0 { bytes.append(contentsOf: repeatElement(0, count: n - r)) }
    }
    mutating func patchU32(at offset: Int, _ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { src in
            for i in 0..<4 { bytes[offset + i] = src[i] }
        }
    }
}

/// Reads little-endian values from a byte range with bounds checks; every
/// failure names the file and the absolute offset.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    var position: Int
    let file: String
    /// Offset of `base` within the file, for error messages.
    let fileOffset: Int

    init(_ base: UnsafeRawBufferPointer, file: String, fileOffset: Int = 0) {
        self.base = base
        self.position = 0
        self.file = file
        self.fileOffset = fileOffset
    }

    var remaining: Int { base.count - position }

    func fail(_ reason: String) -> TidepoolError {
        .corrupt(file: file, offset: fileOffset + position, reason: reason)
    }

    mutating func need(_ n: Int, _ what: String) throws {
        if n < 0 || n > remaining { throw fail("truncated \(what): need \(n) bytes, \(remaining) left") }
    }

    mutating func u8(_ what: String = "byte") throws -> UInt8 {
        try need(1, what)
        defer { position += 1 }
        return base[position]
    }
    mutating func u16(_ what: String = "u16") throws -> UInt16 {
        try need(2, what)
        defer { position += 2 }
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt16.self))
    }
    mutating func u32(_ what: String = "u32") throws -> UInt32 {
        try need(4, what)
        defer { position += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }
    mutating func u64(_ what: String = "u64") throws -> UInt64 {
        try need(8, what)
        defer { position += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }
    /// A u64 used as a size or offset: values beyond 2^48 are damage, not data.
    mutating func size(_ what: String) throws -> Int {
        let v = try u64(what)
        guard v < (1 << 48) else {
            position -= 8
            throw fail("\(what) \(v) is implausibly large")
        }
        return Int(v)
    }
    mutating func i64(_ what: String = "i64") throws -> Int64 { Int64(bitPattern: try u64(what)) }
    mutating func f64(_ what: String = "f64") throws -> Double { Double(bitPattern: try u64(what)) }
    mutating func bytes(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        try need(n, what)
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: base[position..<(position + n)])
    }
    mutating func string(_ what: String = "string") throws -> String {
        let n = Int(try u32("\(what) length"))
        let b = try bytes(n, what)
        guard let s = String(validating: b, as: UTF8.self) else { throw fail("\(what) is not valid UTF-8") }
        return s
    }
}
