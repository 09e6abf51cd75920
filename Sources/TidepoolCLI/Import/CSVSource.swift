import CSV
import Foundation
import Tidepool

/// Rows of a CSV (or TSV) file with a header row. The id from `--id-column` (default `id` when
/// the header has it, else row numbers), the vector from `--vector-column` (default `vector`: a JSON
/// array, or numbers separated by spaces, commas or semicolons; empty for a document without
/// one), and every other column (or those of `--attribute-columns`) an attribute whose type is
/// the column's: int when every value is an integer, float when every value is a number, bool
/// when every value is true or false, string otherwise — decided by a first pass over the file.
/// An empty cell leaves the attribute out.
struct CSVSource: DocumentSource {
    enum ColumnType { case int, float, bool, string }

    let path: String
    let delimiter: UnicodeScalar
    let idColumn: Int?
    let vectorColumn: Int?
    let attributes: [(name: String, column: Int, type: ColumnType)]
    let firstID: UInt64
    let rowCount: Int
    let columnCount: Int
    private let reader: CSVReader
    private var row = 0

    init(
        path: String, delimiter: UnicodeScalar, idColumn idName: String?, vectorColumn vectorName: String?,
        attributeColumns: [String]?, firstID: UInt64
    ) throws {
        self.path = path
        self.delimiter = delimiter
        self.firstID = firstID
        // Pass 1: the header, the row count and each column's type.
        let first = try CSVSource.open(path, delimiter)
        guard let header = first.headerRow, !header.isEmpty else { throw TidepoolError.invalidArgument("'\(path)' has no header row") }
        func column(_ name: String?, default fallback: String, flag: String) throws -> Int? {
            if let name {
                guard let i = header.firstIndex(of: name) else {
                    throw TidepoolError.invalidArgument(
                        "'\(path)' has no column '\(name)' for \(flag) (columns: \(header.joined(separator: ", ")))")
                }
                return i
            }
            return header.firstIndex(of: fallback)
        }
        let idColumn = try column(idName, default: "id", flag: "--id-column")
        let vectorColumn = try column(vectorName, default: "vector", flag: "--vector-column")
        self.idColumn = idColumn
        self.vectorColumn = vectorColumn
        let chosen: [Int]
        if let names = attributeColumns {
            chosen = try names.map { n in
                guard let i = header.firstIndex(of: n) else {
                    throw TidepoolError.invalidArgument("'\(path)' has no column '\(n)' for --attribute-columns")
                }
                return i
            }
        } else {
            chosen = header.indices.filter { $0 != idColumn && $0 != vectorColumn }
        }
        var types = [ColumnType?](repeating: nil, count: header.count)
        var rows = 0
        while let fields = first.next() {
            rows += 1
            guard fields.count == header.count else {
                throw TidepoolError.invalidArgument("'\(path)' row \(rows): \(fields.count) fields, the header has \(header.count)")
            }
            for c in chosen where !fields[c].isEmpty { types[c] = CSVSource.widen(types[c], fields[c]) }
        }
        if let e = first.error { throw TidepoolError.invalidArgument("'\(path)': \(e)") }
        rowCount = rows
        columnCount = header.count
        attributes = chosen.map { (header[$0], $0, types[$0] ?? .string) }
        reader = try CSVSource.open(path, delimiter)
    }

    /// A reader over the file mapped into memory (pages the system may drop again, not a copy): the
    /// library's file streams report an error at every end of file on Linux, its data streams do not.
    private static func open(_ path: String, _ delimiter: UnicodeScalar) throws -> CSVReader {
        close(try openRegularFile(path))
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw TidepoolError.invalidArgument("'\(path)': \(error.localizedDescription)")
        }
        do { return try CSVReader(stream: InputStream(data: data), hasHeaderRow: true, delimiter: delimiter) } catch {
            throw TidepoolError.invalidArgument("'\(path)': \(error)")
        }
    }

    /// The narrowest type holding both what a column held so far and `value`.
    static func widen(_ current: ColumnType?, _ value: String) -> ColumnType {
        let own: ColumnType
        if Int64(value) != nil {
            own = .int
        } else if let d = Double(value), d.isFinite {  // "nan", "inf" and "1e400" are text here
            own = .float
        } else if ["true", "false"].contains(value.lowercased()) {
            own = .bool
        } else {
            own = .string
        }
        guard let current, current != own else { return own }
        if (current == .int && own == .float) || (current == .float && own == .int) { return .float }
        return .string
    }

    var expectedRows: Int? { rowCount }

    mutating func next(_ max: Int) throws -> [Document] {
        var out: [Document] = []
        while out.count < max, let fields = reader.next() {
            row += 1
            let here = "'\(path)' row \(row)"
            guard fields.count == columnCount else {
                throw TidepoolError.invalidArgument("\(here): \(fields.count) fields, the header has \(columnCount)")
            }
            let id: DocumentID
            if let c = idColumn {
                let raw = fields[c]
                if let u = UInt64(raw) {
                    id = .uint(u)
                } else if !raw.isEmpty && raw.utf8.count <= 1024 {
                    id = .string(raw)
                } else {
                    throw TidepoolError.invalidArgument(
                        "\(here): the id '\(raw.prefix(40))' is neither a non-negative integer nor a string of 1 to 1024 bytes")
                }
            } else {
                let (v, overflow) = firstID.addingReportingOverflow(UInt64(row - 1))
                guard !overflow else { throw TidepoolError.invalidArgument("\(here): row ids pass 2^64") }
                id = .uint(v)
            }
            let vector = try vectorColumn.map { try CSVSource.vector(fields[$0], at: here) } ?? []
            var attrs: [String: AttributeValue] = [:]
            for a in attributes where !fields[a.column].isEmpty {
                let s = fields[a.column]
                let value: AttributeValue?
                switch a.type {
                case .int: value = Int64(s).map(AttributeValue.int)
                case .float: value = Double(s).flatMap { $0.isFinite ? AttributeValue.float($0) : nil }
                case .bool: value = ["true", "false"].contains(s.lowercased()) ? .bool(s.lowercased() == "true") : nil
                case .string: value = .string(s)
                }
                guard let value else {
                    throw TidepoolError.invalidArgument(
                        "\(here): '\(s.prefix(40))' in column '\(a.name)' is not \(a.type) (did the file change while read?)")
                }
                attrs[a.name] = value
            }
            out.append(Document(id: id, vector: vector, attributes: attrs))
        }
        if out.isEmpty, let e = reader.error { throw TidepoolError.invalidArgument("'\(path)': \(e)") }
        return out
    }

    /// A vector cell: a JSON array, or numbers separated by spaces, commas or semicolons; empty: none.
    static func vector(_ cell: String, at here: String) throws -> [Float] {
        let trimmed = cell.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return [] }
        if trimmed.hasPrefix("[") {
            do { return try JSONParser.parse(Array(trimmed.utf8)).floatVector(at: "\(here) vector") } catch let e as TidepoolError {
                throw e
            } catch { throw TidepoolError.invalidArgument("\(here): the vector is not a JSON array of numbers (\(error))") }
        }
        let parts = trimmed.split(whereSeparator: { $0 == " " || $0 == "," || $0 == ";" || $0 == "\t" })
        return try parts.map { p in
            guard let f = Float(p) else { throw TidepoolError.invalidArgument("\(here): '\(p.prefix(20))' in the vector is not a number") }
            return f
        }
    }
}
