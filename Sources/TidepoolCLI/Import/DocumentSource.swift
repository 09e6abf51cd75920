import Foundation
import Tidepool

/// Documents read from a file, batch by batch, for `tidepool import`.
protocol DocumentSource {
    /// Rows in the file when known before reading (for the progress bar), else nil.
    var expectedRows: Int? { get }
    /// The next batch of at most `max` documents; empty at the end.
    mutating func next(_ max: Int) throws -> [Document]
    /// Called once the whole file is read (a converter process is waited for and its failure reported).
    mutating func finish() throws
}

extension DocumentSource {
    mutating func finish() throws {}
}

/// The file formats `tidepool import` reads, by extension (or `--format`), each checked against
/// the file's first bytes where the format has a signature: a file is never read as something it is not.
enum ImportFormat: String, CaseIterable {
    case fvecs, npy, jsonl, csv, tsv, parquet, hdf5

    static func of(_ path: String, declared: String?) throws -> ImportFormat {
        let format: ImportFormat
        if let declared {
            guard let f = ImportFormat(rawValue: declared.lowercased()) else {
                throw TidepoolError.invalidArgument(
                    "--format must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not '\(declared)'")
            }
            format = f
        } else {
            let ext = (path as NSString).pathExtension.lowercased()
            switch ext {
            case "fvecs": format = .fvecs
            case "npy": format = .npy
            case "jsonl", "ndjson": format = .jsonl
            case "csv": format = .csv
            case "tsv": format = .tsv
            case "parquet", "pq": format = .parquet
            case "hdf5", "h5": format = .hdf5
            default:
                throw TidepoolError.invalidArgument(
                    "'\(path)': no known format for the extension '.\(ext)' (\(allCases.map { "." + $0.rawValue }.joined(separator: " "))); give --format"
                )
            }
        }
        try format.checkSignature(path)
        return format
    }

    /// The file's first bytes against the format's signature, where it has one.
    private func checkSignature(_ path: String) throws {
        let expected: [UInt8]
        switch self {
        case .npy: expected = [0x93] + Array("NUMPY".utf8)
        case .parquet: expected = Array("PAR1".utf8)
        case .hdf5: expected = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        default: return
        }
        let fd = try openRegularFile(path)
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: expected.count)
        let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress!, expected.count) }
        guard n == expected.count, head == expected else {
            throw TidepoolError.invalidArgument("'\(path)' is not a \(rawValue) file (its first bytes are not the \(rawValue) signature)")
        }
    }
}

/// A descriptor open for reading on `path`, which must be a regular file: a directory, FIFO or
/// device is refused by name (reading a FIFO could block forever), as is a missing file.
func openRegularFile(_ path: String) throws -> Int32 {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw TidepoolError.io(path: path, operation: "open", errno: errno) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        close(fd)
        throw TidepoolError.io(path: path, operation: "stat", errno: errno)
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
        close(fd)
        let kind = (st.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file (a FIFO, socket or device)"
        throw TidepoolError.invalidArgument("'\(path)' is \(kind)")
    }
    _ = fcntl(fd, F_SETFL, 0)  // blocking reads from here on
    return fd
}

/// Rows of a vector file (.fvecs, float32 or float64 .npy), ids from `firstID` on.
struct MatrixSource: DocumentSource {
    let matrix: VectorMatrix
    let firstID: UInt64
    private var row = 0

    init(_ path: String, firstID: UInt64) throws {
        matrix = try VectorFile.readVectors(path)
        if matrix.rows > 0, UInt64.max - firstID < UInt64(matrix.rows - 1) {
            throw TidepoolError.invalidArgument("--first-id \(firstID) leaves no room for \(matrix.rows) ids below 2^64")
        }
        self.firstID = firstID
    }

    var expectedRows: Int? { matrix.rows }

    mutating func next(_ max: Int) throws -> [Document] {
        let end = min(row + max, matrix.rows)
        defer { row = end }
        return (row..<end).map { Document(id: .uint(firstID + UInt64($0)), vector: matrix.row($0)) }
    }
}
