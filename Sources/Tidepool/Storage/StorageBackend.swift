import Foundation

/// Where a database's files live: the only way the engine reaches storage. `LocalStorage` is a
/// directory on a POSIX file system; tests drop in an in-memory store and a fault-injecting
/// wrapper; an object store can implement the same calls, because every file but the WAL is
/// written once and published whole (segments, the manifest), and the WAL is the only file that
/// is appended to. Names are relative, `/`-separated paths.
protocol StorageBackend: AnyObject, Sendable {
    /// A human-readable location, for messages.
    var location: String { get }
    /// The full name of a file, for messages (a path, or a URL).
    func displayPath(_ name: String) -> String

    /// Starts a new immutable file; it becomes visible under `name`, whole, only on `commit()`.
    func createImmutable(_ name: String) throws -> ImmutableFileWriter
    /// Maps a whole file read-only.
    func map(_ name: String) throws -> MappedFile
    /// Maps a file of `size` bytes whose bytes may arrive as they are read (`ArrivingFile`): on
    /// object storage, ranges are fetched on demand and the rest can follow in the background;
    /// elsewhere the file is mapped whole.
    func mapArriving(_ name: String, size: Int) throws -> ArrivingFile
    /// Reads a byte range of a file (fewer bytes at its end).
    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8]
    /// Size of a file in bytes.
    func size(of name: String) throws -> Int
    /// The names of the files and folders directly under a folder, sorted; empty when it does not exist.
    func list(_ folder: String) throws -> [String]
    /// Removes a file; missing files are not an error.
    func delete(_ name: String) throws
    /// Removes a folder and everything under it; a missing folder is not an error.
    func deleteFolder(_ folder: String) throws

    /// Replaces the manifest atomically: readers see the old or the new one, whole.
    func swapManifest(_ bytes: [UInt8]) throws
    /// The current manifest, or nil where none was ever written.
    func readManifest() throws -> [UInt8]?
    /// Removes what an interrupted `swapManifest` may have left (never the manifest itself).
    func removeManifestLeftovers() throws
    /// The manifest's name for messages.
    var manifestDisplayPath: String { get }

    /// Opens (creating) an append-only log file such as a WAL segment.
    func openAppendLog(_ name: String) throws -> AppendLog
    /// Whether log files are objects written once (object storage): then the WAL writes each
    /// group commit as a file of its own, and `sync` is its commit point.
    var logsAreObjects: Bool { get }
    /// A hint that these files are about to be mapped in order (WAL replay): a store with
    /// latency fetches them in parallel ahead of time.
    func prefetch(_ names: [String])
    /// Blocks until a durable write may be acknowledged (on object storage, a new writer waits
    /// out its predecessor's `WriterLease`); at once elsewhere.
    func waitBeforeAcknowledging()
    /// How a WAL group commit paces its writes: it waits `gather` for more writes to join, and
    /// starts no sooner than `minSpacing` after the previous one started. Zero for local files.
    var commitPacing: (gather: Duration, minSpacing: Duration) { get }
    /// Whether files a compaction replaced stay until no reader may need them (object storage,
    /// where query nodes read older manifest versions) instead of being deleted at once; how
    /// long they stay at least, and how many manifest generations name them still.
    var retiresFilesLazily: Bool { get }
    var garbageGrace: Duration { get }
    var retainedManifestGenerations: UInt64 { get }
    /// The bytes of the files directly under a folder (0 when it does not exist).
    func bytes(under folder: String) throws -> Int
    /// Cuts a log file to `length` bytes (a torn final write).
    func truncate(_ name: String, to length: Int) throws
    /// Makes immutable file `source` also readable as `target` (a branch's files): a hard link
    /// in a local directory, which copies nothing; on object storage a copy inside the store;
    /// elsewhere a copy through this process. Returns the bytes the storage now holds twice.
    /// `target` is durable once `syncFolder` of its folder returns.
    func share(_ source: String, as target: String) throws -> Int
    /// Makes the names created in `folder` durable (fsync of the directory; nothing elsewhere).
    func syncFolder(_ folder: String) throws

    /// Takes the exclusive right to write this database, for as long as the returned lock is held;
    /// throws `TidepoolError.locked` when another process holds it (to write or to read).
    func lockForWriting() throws -> StorageLock
    /// Takes a shared right to read this database: any number of readers, no writer.
    func lockForReading() throws -> StorageLock
}

extension StorageBackend {
    func share(_ source: String, as target: String) throws -> Int {
        try copyFile(source, to: target)
    }
    func syncFolder(_ folder: String) throws {}

    /// Writes immutable file `name` whole and publishes it; a failure leaves nothing.
    func writeWhole(_ name: String, _ bytes: [UInt8]) throws {
        let writer = try createImmutable(name)
        do {
            try writer.write(bytes)
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Copies an immutable file in 8 MiB pieces; returns the bytes copied.
    func copyFile(_ source: String, to target: String) throws -> Int {
        let size = try self.size(of: source)
        let writer = try createImmutable(target)
        do {
            var offset = 0
            while offset < size {
                let piece = try read(source, offset: offset, count: min(8 << 20, size - offset))
                guard !piece.isEmpty else {
                    throw TidepoolError.io(path: displayPath(source), operation: "read (file shorter than its size)", errno: EIO)
                }
                try writer.write(piece)
                offset += piece.count
            }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
        return size
    }

    var logsAreObjects: Bool { false }
    func mapArriving(_ name: String, size: Int) throws -> ArrivingFile { ArrivingFile(complete: try map(name)) }
    func prefetch(_ names: [String]) {}
    func waitBeforeAcknowledging() {}
    var commitPacing: (gather: Duration, minSpacing: Duration) { (.zero, .zero) }
    var retiresFilesLazily: Bool { false }
    var garbageGrace: Duration { .zero }
    var retainedManifestGenerations: UInt64 { 0 }
    func bytes(under folder: String) throws -> Int {
        try list(folder).reduce(0) { $0 + ((try? size(of: folder + "/" + $1)) ?? 0) }
    }
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
    /// Makes everything appended so far durable.
    func sync() throws
    /// Cuts the file to `length` bytes (what a failed append left past it); later appends follow it.
    func truncate(to length: Int) throws
    func close()
    var size: Int { get }
}

/// The exclusive right to write a database, released by `release()` or when the holder dies.
protocol StorageLock: AnyObject, Sendable {
    func release()
}

/// A read-only view of a whole file's bytes (a memory mapping, or memory the store owns),
/// released with the last reference.
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
