import Foundation

/// Where a database's files live. Every file the engine touches goes through this
/// interface, so that an object store can later hold the same immutable files
/// (segments, manifest) without a redesign. Names are relative, `/`-separated paths.
protocol StorageBackend: Sendable {
    /// A human-readable location, for messages.
    var location: String { get }
    /// Starts a new immutable file; it becomes visible under `name` only on `commit()`.
    func createImmutable(_ name: String) throws -> ImmutableFileWriter
    /// Maps a whole immutable file read-only.
    func map(_ name: String) throws -> MappedFile
    /// Reads a byte range of a file.
    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8]
    /// Size of a file in bytes.
    func size(of name: String) throws -> Int
    /// The names of the files under a folder (not recursive), sorted.
    func list(_ folder: String) throws -> [String]
    /// Removes a file; missing files are not an error.
    func delete(_ name: String) throws
    /// Replaces the manifest atomically: readers see the old or the new one, whole.
    func swapManifest(_ bytes: [UInt8]) throws
    /// The current manifest, or nil in a new database.
    func readManifest() throws -> [UInt8]?
    /// Opens (creating) an append-only log file such as a WAL segment.
    func openAppendLog(_ name: String) throws -> AppendLog
}

/// A file being written once, then published atomically.
protocol ImmutableFileWriter: AnyObject {
    var bytesWritten: Int { get }
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the file durable and visible under its final name.
    func commit() throws
    /// Drops the partial file.
    func abort()
}

extension ImmutableFileWriter {
    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
}

/// An append-only log file.
protocol AppendLog: AnyObject, Sendable {
    var name: String { get }
    func append(_ bytes: UnsafeRawBufferPointer) throws
    func sync() throws
    func close()
    var size: Int { get }
}

/// A read-only memory mapping of a whole file, unmapped when released.
final class MappedFile: @unchecked Sendable {
    let name: String
    let bytes: UnsafeRawBufferPointer
    private let unmap: @Sendable (UnsafeRawBufferPointer) -> Void

    init(name: String, bytes: UnsafeRawBufferPointer, unmap: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.name = name
        self.bytes = bytes
        self.unmap = unmap
    }

    deinit { unmap(bytes) }
}
