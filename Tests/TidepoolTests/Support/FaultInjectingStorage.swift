import Foundation

@testable import Tidepool

/// A test-only `StorageBackend` that passes every call to another one, except that it fails the
/// Nth call of a kind (a write, a sync, a rename — the publication of an immutable file or the
/// manifest —, a read or map, a delete) with an errno (EIO, ENOSPC, …), or makes the Nth write a
/// short one (part of the bytes written, then the error), once or from then on. What the engine
/// below it sees is what a failing disk gives: an error from the call, nothing else changed.
final class FaultInjectingStorage: StorageBackend, @unchecked Sendable {
    enum Operation: String, CaseIterable, Sendable {
        /// Bytes appended to a log or written to an immutable file.
        case write
        /// A log's sync, or the fsync of an immutable file before its rename.
        case sync
        /// An immutable file or the manifest made visible under its name.
        case rename
        /// A file mapped or read.
        case read
        case delete
    }

    struct Fault: Sendable {
        var operation: Operation
        /// Fails the `nth` call of `operation` (1-based), counting from when the fault is set.
        var nth: Int
        var errno: Int32 = EIO
        /// Writes only: writes half the bytes before failing.
        var short: Bool = false
        /// Keeps failing every later call of `operation` too.
        var sticky: Bool = false
    }

    let inner: any StorageBackend
    private let lock = NSLock()
    private var faults: [Fault] = []
    private var counts: [Operation: Int] = [:]
    /// Faults that fired, for assertions.
    private(set) var fired: [String] = []

    init(_ inner: any StorageBackend) { self.inner = inner }

    /// Arms a fault (counting its operation's calls from now).
    func inject(_ fault: Fault) {
        lock.withLock {
            counts[fault.operation] = 0
            faults.append(fault)
        }
    }

    /// Disarms every fault.
    func heal() { lock.withLock { faults.removeAll() } }

    /// Counts a call and returns the fault it hits, if any.
    fileprivate func check(_ op: Operation, _ name: String) -> Fault? {
        lock.withLock {
            counts[op, default: 0] += 1
            let n = counts[op]!
            guard let f = faults.first(where: { $0.operation == op && (n == $0.nth || ($0.sticky && n > $0.nth)) }) else { return nil }
            fired.append("\(op.rawValue) #\(n) of \(name): errno \(f.errno)")
            return f
        }
    }

    /// Writes `bytes` with `body`, unless a write fault fires: then a short write (half the
    /// bytes) or none, and the error.
    fileprivate func write(_ bytes: UnsafeRawBufferPointer, to name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let f = check(.write, name) else { return try body(bytes) }
        if f.short { try body(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count / 2)])) }
        throw TidepoolError.io(path: displayPath(name), operation: "write (injected)", errno: f.errno)
    }

    fileprivate func fail(_ op: Operation, _ name: String) throws {
        if let f = check(op, name) {
            throw TidepoolError.io(path: displayPath(name), operation: "\(op.rawValue) (injected)", errno: f.errno)
        }
    }

    var location: String { inner.location }
    func displayPath(_ name: String) -> String { inner.displayPath(name) }
    var manifestDisplayPath: String { inner.manifestDisplayPath }

    func createImmutable(_ name: String) throws -> ImmutableFileWriter {
        FaultyImmutableWriter(inner: try inner.createImmutable(name), storage: self, name: name)
    }

    func map(_ name: String) throws -> MappedFile {
        try fail(.read, name)
        return try inner.map(name)
    }

    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8] {
        try fail(.read, name)
        return try inner.read(name, offset: offset, count: count)
    }

    func size(of name: String) throws -> Int { try inner.size(of: name) }
    func list(_ folder: String) throws -> [String] { try inner.list(folder) }

    func delete(_ name: String) throws {
        try fail(.delete, name)
        try inner.delete(name)
    }

    func deleteFolder(_ folder: String) throws {
        try fail(.delete, folder)
        try inner.deleteFolder(folder)
    }

    func swapManifest(_ bytes: [UInt8]) throws {
        try fail(.write, "MANIFEST")
        try fail(.sync, "MANIFEST")
        try fail(.rename, "MANIFEST")
        try inner.swapManifest(bytes)
    }

    func readManifest() throws -> [UInt8]? {
        try fail(.read, "MANIFEST")
        return try inner.readManifest()
    }

    func removeManifestLeftovers() throws { try inner.removeManifestLeftovers() }

    func openAppendLog(_ name: String) throws -> AppendLog {
        FaultyAppendLog(inner: try inner.openAppendLog(name), storage: self)
    }

    func truncate(_ name: String, to length: Int) throws {
        try fail(.write, name)
        try inner.truncate(name, to: length)
    }

    func lockForWriting() throws -> StorageLock { try inner.lockForWriting() }
    func lockForReading() throws -> StorageLock { try inner.lockForReading() }
}

private final class FaultyImmutableWriter: ImmutableFileWriter {
    let inner: ImmutableFileWriter
    let storage: FaultInjectingStorage
    let name: String
    var bytesWritten: Int { inner.bytesWritten }

    init(inner: ImmutableFileWriter, storage: FaultInjectingStorage, name: String) {
        self.inner = inner
        self.storage = storage
        self.name = name
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws { try storage.write(bytes, to: name) { try inner.write($0) } }

    func commit() throws {
        try storage.fail(.sync, name)
        try storage.fail(.rename, name)
        try inner.commit()
    }

    func abort() { inner.abort() }
}

private final class FaultyAppendLog: AppendLog, @unchecked Sendable {
    let inner: AppendLog
    let storage: FaultInjectingStorage
    var name: String { inner.name }
    var size: Int { inner.size }

    init(inner: AppendLog, storage: FaultInjectingStorage) {
        self.inner = inner
        self.storage = storage
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws { try storage.write(bytes, to: name) { try inner.append($0) } }

    func sync() throws {
        try storage.fail(.sync, name)
        try inner.sync()
    }

    func truncate(to length: Int) throws {
        try storage.fail(.write, name)
        try inner.truncate(to: length)
    }

    func close() { inner.close() }
}
