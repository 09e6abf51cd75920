import Foundation
import Tidepool

/// One document a line (JSON Lines), from a file or a converter's output. Ids from the id field,
/// or, when the first document has none and `rowIDs` is set, every line's row number (from
/// `firstID`): a file mixing both would let row numbers overwrite given ids, so it is an error.
/// Blank lines are skipped; a line that is not a document is an error naming the file and line.
struct JSONLinesSource: DocumentSource {
    let name: String
    let fields: DocumentJSONFields
    let rowIDs: Bool
    let firstID: UInt64
    private var lines: LineReader
    private var lineNumber = 0
    private var rows: UInt64 = 0
    /// Decided by the first document: whether ids are row numbers.
    private var idsAreRows: Bool?

    init(fd: Int32, name: String, fields: DocumentJSONFields, rowIDs: Bool, firstID: UInt64) {
        self.name = name
        self.fields = fields
        self.rowIDs = rowIDs
        self.firstID = firstID
        lines = LineReader(fd: fd, name: name)
    }

    var expectedRows: Int? { nil }

    mutating func next(_ max: Int) throws -> [Document] {
        var out: [Document] = []
        while out.count < max, let line = try lines.next() {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let where_ = "\(name) line \(lineNumber)"
            var value: JSONValue
            do { value = try JSONParser.parse(line) } catch {
                throw TidepoolError.invalidArgument("\(where_): \(error)")
            }
            if rowIDs, case .object(var o) = value {
                let hasID = o[fields.id] != nil
                let rowsAsIDs = idsAreRows ?? !hasID
                idsAreRows = rowsAsIDs
                guard hasID != rowsAsIDs else {
                    throw TidepoolError.invalidArgument(
                        rowsAsIDs
                            ? "\(where_) has an '\(fields.id)', but the first document had none (its ids are row numbers)"
                            : "\(where_) has no '\(fields.id)' (the first document had one; is --id-field right?)")
                }
                if rowsAsIDs {
                    let (id, overflow) = firstID.addingReportingOverflow(rows)
                    guard !overflow else { throw TidepoolError.invalidArgument("\(where_): row ids pass 2^64") }
                    o[fields.id] = .uint(id)
                    value = .object(o)
                }
            }
            out.append(try Document(json: value, path: where_, fields: fields))
            rows += 1
        }
        return out
    }
}

/// Lines of a file descriptor, read in large chunks; a line longer than `maxLine` is refused
/// (one line is one document: 64 MiB is far past any real one).
struct LineReader {
    static let maxLine = 64 << 20
    let fd: Int32
    let name: String
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    mutating func next() throws -> [UInt8]? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<nl])
                start = nl + 1
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            guard buffer.count - start <= LineReader.maxLine else {
                throw TidepoolError.invalidArgument("\(name): a line longer than \(LineReader.maxLine) bytes")
            }
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            let chunk = 1 << 20
            let old = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: chunk))
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + old, chunk) }
            if n < 0 {
                buffer.removeLast(chunk)
                if errno == EINTR { continue }
                throw TidepoolError.io(path: name, operation: "read", errno: errno)
            }
            buffer.removeLast(chunk - n)
            if n == 0 { atEnd = true }
        }
    }
}
