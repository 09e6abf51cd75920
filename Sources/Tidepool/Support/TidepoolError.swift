import Foundation

/// Every error the Tidepool engine throws. Messages name what failed and where
/// (file, byte offset, collection) so that an operator can act on them.
public enum TidepoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Bad input from the caller: nothing was written.
    case invalidArgument(String)
    /// The named collection does not exist.
    case collectionNotFound(String)
    /// A collection of that name already exists.
    case collectionExists(String)
    /// A vector had the wrong number of components.
    case dimensionMismatch(collection: String, expected: Int, got: Int)
    /// Another process holds the data directory open for writing.
    case locked(path: String)
    /// A file failed a checksum, magic, version or bounds check.
    case corrupt(file: String, offset: Int, reason: String)
    /// An operating-system call failed.
    case io(path: String, operation: String, errno: Int32)
    /// The database or collection was closed, or a fatal write error poisoned it.
    case closed(String)
    /// The database was opened read-only (`DatabaseOptions.readOnly`), so it cannot change.
    case readOnly(String)
    /// The operation ran past its deadline (`SearchOptions.deadline`) and was abandoned; nothing changed.
    case deadlineExceeded(String)
    /// An object-store request failed; the message names the URL, the operation and what the store said.
    case storage(String)
    /// Another writer took over this database's object storage (a higher epoch, or a commit slot
    /// it created first): this process acknowledges no more writes.
    case fenced(String)
    /// A version, snapshot or backup asked for does not exist (never kept, or removed by retention).
    case notFound(String)
    /// Something of that name exists already (a snapshot, a collection a branch or restore would create).
    case alreadyExists(String)

    public var description: String {
        switch self {
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .collectionNotFound(let n): return "collection '\(n)' does not exist"
        case .collectionExists(let n): return "collection '\(n)' already exists"
        case .dimensionMismatch(let c, let e, let g):
            return "collection '\(c)': vector has dimension \(g), expected \(e)"
        case .locked(let p): return "data directory '\(p)' is locked by another process (a writer, or readers while a write was asked)"
        case .corrupt(let f, let o, let r): return "corrupt file '\(f)' at offset \(o): \(r)"
        case .io(let p, let op, let e): return "\(op) failed on '\(p)': \(String(cString: strerror(e))) (errno \(e))"
        case .closed(let m): return "closed: \(m)"
        case .readOnly(let m): return "read-only: \(m)"
        case .deadlineExceeded(let m): return "deadline exceeded: \(m)"
        case .storage(let m): return m
        case .fenced(let m): return "fenced: \(m)"
        case .notFound(let m): return "not found: \(m)"
        case .alreadyExists(let m): return "already exists: \(m)"
        }
    }
}

extension TidepoolError: LocalizedError {
    public var errorDescription: String? { description }
}
