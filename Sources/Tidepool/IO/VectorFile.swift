import Foundation

/// A dense row-major matrix of float32 vectors read from a file.
public struct VectorMatrix: Sendable {
    public let rows: Int
    public let dimension: Int
    public var values: [Float]

    public init(rows: Int, dimension: Int, values: [Float]) {
        self.rows = rows
        self.dimension = dimension
        self.values = values
    }

    /// Row `i` as a new array.
    public func row(_ i: Int) -> [Float] { Array(values[(i * dimension)..<((i + 1) * dimension)]) }

    /// The first `n` rows.
    public func prefix(_ n: Int) -> VectorMatrix {
        let n = min(n, rows)
        return VectorMatrix(rows: n, dimension: dimension, values: Array(values[0..<(n * dimension)]))
    }
}

/// Readers for the vector formats users bring: texmex `.fvecs`/`.ivecs` and NumPy `.npy`.
public enum VectorFile {
    /// Reads `.fvecs` (per row: int32 d, then d float32) or a 2-D float32 or float64 `.npy`, by extension.
    public static func readVectors(_ path: String) throws -> VectorMatrix {
        if path.hasSuffix(".npy") { return try readNpy(path) }
        return try readFvecs(path)
    }

    /// The bytes of a regular file; a directory, FIFO or device is refused by name (reading a
    /// FIFO would block), as is a missing or unreadable file, with the system's reason.
    static func load(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TidepoolError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TidepoolError.io(path: path, operation: "stat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            let kind = (st.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file (a FIFO, socket or device)"
            throw TidepoolError.invalidArgument("'\(path)' is \(kind); give a vector file")
        }
        let size = Int(st.st_size)
        var data = Data(count: size)
        var done = 0
        try data.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
            while done < size {
                let n = read(fd, out.baseAddress! + done, size - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw TidepoolError.io(path: path, operation: "read", errno: n == 0 ? EIO : errno) }
                done += n
            }
        }
        return data
    }

    public static func readFvecs(_ path: String) throws -> VectorMatrix {
        let data = try load(path)
        return try data.withUnsafeBytes { raw in
            guard raw.count >= 4 else { throw TidepoolError.corrupt(file: path, offset: 0, reason: "empty .fvecs file") }
            let d = Int(Int32(littleEndian: raw.loadUnaligned(as: Int32.self)))
            guard d > 0 && d <= 65_536 else { throw TidepoolError.corrupt(file: path, offset: 0, reason: "bad dimension \(d)") }
            let stride = 4 + 4 * d
            guard raw.count % stride == 0 else {
                throw TidepoolError.corrupt(
                    file: path, offset: raw.count - raw.count % stride, reason: "file size is not a multiple of the row size \(stride)")
            }
            let n = raw.count / stride
            var values = [Float](repeating: 0, count: n * d)
            try values.withUnsafeMutableBytes { out in
                for i in 0..<n {
                    let rd = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * stride, as: Int32.self))
                    guard rd == d else {
                        throw TidepoolError.corrupt(file: path, offset: i * stride, reason: "row \(i) has dimension \(rd), expected \(d)")
                    }
                    out.baseAddress!.advanced(by: i * d * 4).copyMemory(from: raw.baseAddress! + i * stride + 4, byteCount: d * 4)
                }
            }
            return VectorMatrix(rows: n, dimension: d, values: values)
        }
    }

    /// Reads `.ivecs` (per row: int32 k, then k int32), e.g. ground-truth neighbour ids.
    public static func readIvecs(_ path: String) throws -> [[Int32]] {
        let data = try load(path)
        return try data.withUnsafeBytes { raw in
            var rows: [[Int32]] = []
            var off = 0
            while off < raw.count {
                guard off + 4 <= raw.count else { throw TidepoolError.corrupt(file: path, offset: off, reason: "truncated row header") }
                let k = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: off, as: Int32.self)))
                guard k >= 0, off + 4 + 4 * k <= raw.count else {
                    throw TidepoolError.corrupt(file: path, offset: off, reason: "truncated row of \(k)")
                }
                rows.append((0..<k).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: off + 4 + 4 * $0, as: Int32.self)) })
                off += 4 + 4 * k
            }
            return rows
        }
    }

    /// Reads a C-order, little-endian float32 or float64 2-D `.npy` (format versions 1–3); float64
    /// values are rounded to float32 (a value beyond float32's range becomes infinite, which
    /// writing refuses).
    public static func readNpy(_ path: String) throws -> VectorMatrix {
        let data = try load(path)
        return try data.withUnsafeBytes { raw in
            let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
            guard raw.count >= 10, Array(raw[0..<6]) == magic else {
                throw TidepoolError.corrupt(file: path, offset: 0, reason: "not a .npy file")
            }
            let major = raw[6]
            let headerLen: Int, start: Int
            if major == 1 {
                headerLen = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
                start = 10
            } else {
                guard raw.count >= 12 else { throw TidepoolError.corrupt(file: path, offset: 8, reason: "truncated header") }
                headerLen = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
                start = 12
            }
            guard start + headerLen <= raw.count, let header = String(bytes: raw[start..<(start + headerLen)], encoding: .utf8) else {
                throw TidepoolError.corrupt(file: path, offset: start, reason: "unreadable header")
            }
            let parsed: NpyHeader
            do { parsed = try NpyHeader(parsing: header) } catch {
                throw TidepoolError.corrupt(file: path, offset: start, reason: "bad .npy header: \(error)")
            }
            let width: Int
            switch parsed.descr {
            case "<f4": width = 4
            case "<f8": width = 8
            default:
                throw TidepoolError.invalidArgument(
                    "\(path): only little-endian float32 ('<f4') or float64 ('<f8') .npy is supported, not '\(parsed.descr)'")
            }
            guard !parsed.fortranOrder else { throw TidepoolError.invalidArgument("\(path): Fortran-order arrays are not supported") }
            let dims = parsed.shape
            guard dims.count == 2, dims[1] > 0, dims[1] <= 65_536 else {
                throw TidepoolError.invalidArgument("\(path): expected a 2-D array of 1 to 65536 columns, got shape \(dims)")
            }
            let body = start + headerLen
            guard let count = parsed.elementCount, count <= (raw.count - body) / width else {
                throw TidepoolError.corrupt(file: path, offset: body, reason: "data shorter than shape \(dims)")
            }
            var values = [Float](repeating: 0, count: count)
            if width == 4 {
                values.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[body..<(body + count * 4)])) }
            } else {
                for i in 0..<count {
                    values[i] = Float(
                        Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: body + i * 8, as: UInt64.self))))
                }
            }
            return VectorMatrix(rows: dims[0], dimension: dims[1], values: values)
        }
    }

    /// Writes `.fvecs`.
    public static func writeFvecs(_ m: VectorMatrix, to path: String) throws {
        var w = ByteWriter(capacity: m.rows * (m.dimension * 4 + 4))
        m.values.withUnsafeBufferPointer { v in
            for i in 0..<m.rows {
                w.u32(UInt32(m.dimension))
                w.floats(UnsafeBufferPointer(rebasing: v[(i * m.dimension)..<((i + 1) * m.dimension)]))
            }
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(w.bytes)) else {
            throw TidepoolError.io(path: path, operation: "write", errno: errno)
        }
    }
}
