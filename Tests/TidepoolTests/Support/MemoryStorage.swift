import Foundation

@testable import Tidepool

/// A test-only `StorageBackend` that keeps every file in memory: the proof that the engine
/// reaches storage only through the protocol (the API tests run against it as well as against
/// the local directory), and a model of durability: an append log's bytes survive
/// `simulatePowerLoss()` only up to its last `sync`, immutable files only once committed.
final class MemoryStorage: StorageBackend, @unchecked Sendable {
    private struct File {
        var bytes: [UInt8]
        /// For append logs: bytes made durable by `sync`.
        var durable: Int
    }

    private let lock = NSLock()
    private var files: [String: File] = [:]
    private var locked = false
    private var readers = 0
    let location: String

    init(name: String = "memory") { location = "memory:" + name }

    /// A store holding exactly `files` (name to bytes, all durable): a database loaded from
    /// disk, or a copy of one with a file damaged.
    init(files: [String: [UInt8]], name: String = "memory") {
        location = "memory:" + name
        self.files = files.mapValues { File(bytes: $0, durable: $0.count) }
    }

    /// Every file's bytes.
    var contents: [String: [UInt8]] { lock.withLock { files.mapValues(\.bytes) } }

    func displayPath(_ name: String) -> String { location + "/" + name }
    var manifestDisplayPath: String { displayPath("MANIFEST") }

    /// Every file's name, sorted.
    var allFiles: [String] { lock.withLock { files.keys.sorted() } }

    /// Drops what a power cut would: log bytes appended since their last sync.
    func simulatePowerLoss() {
        lock.withLock {
            for (name, f) in files { files[name] = File(bytes: Array(f.bytes.prefix(f.durable)), durable: f.durable) }
            locked = false
            readers = 0
        }
    }

    fileprivate func publish(_ name: String, _ bytes: [UInt8]) { lock.withLock { files[name] = File(bytes: bytes, durable: bytes.count) } }
    fileprivate func append(_ name: String, _ bytes: UnsafeRawBufferPointer) -> Int {
        lock.withLock {
            files[name, default: File(bytes: [], durable: 0)].bytes.append(contentsOf: bytes)
            return files[name]!.bytes.count
        }
    }
    fileprivate func sync(_ name: String) { lock.withLock { if let f = files[name] { files[name]!.durable = f.bytes.count } } }

    private func missing(_ name: String, _ op: String) -> TidepoolError { .io(path: displayPath(name), operation: op, errno: ENOENT) }

    func createImmutable(_ name: String) throws -> ImmutableFileWriter { MemoryImmutableWriter(storage: self, name: name) }

    func map(_ name: String) throws -> MappedFile {
        guard let bytes = lock.withLock({ files[name]?.bytes }) else { throw missing(name, "open") }
        // A copy, aligned as a page would be: later appends do not reach an existing mapping, as with mmap.
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { if $0.count > 0 { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        return MappedFile(name: displayPath(name), bytes: UnsafeRawBufferPointer(start: p, count: bytes.count)) { b in
            UnsafeMutableRawPointer(mutating: b.baseAddress)?.deallocate()
        }
    }

    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8] {
        guard let bytes = lock.withLock({ files[name]?.bytes }) else { throw missing(name, "open") }
        guard offset < bytes.count else { return [] }
        return Array(bytes[offset..<min(bytes.count, offset + count)])
    }

    func size(of name: String) throws -> Int {
        guard let n = lock.withLock({ files[name]?.bytes.count }) else { throw missing(name, "stat") }
        return n
    }

    func list(_ folder: String) throws -> [String] {
        let prefix = folder.isEmpty ? "" : folder + "/"
        let names = lock.withLock { files.keys.filter { $0.hasPrefix(prefix) } }
        return Set(names.map { String($0.dropFirst(prefix.count).prefix { $0 != "/" }) }).sorted()
    }

    func delete(_ name: String) throws { _ = lock.withLock { files.removeValue(forKey: name) } }

    func deleteFolder(_ folder: String) throws {
        lock.withLock { for k in files.keys where k.hasPrefix(folder + "/") { files[k] = nil } }
    }

    func swapManifest(_ bytes: [UInt8]) throws { publish("MANIFEST", bytes) }
    func readManifest() throws -> [UInt8]? { lock.withLock { files["MANIFEST"]?.bytes } }
    func removeManifestLeftovers() throws {}

    func openAppendLog(_ name: String) throws -> AppendLog {
        let size = lock.withLock { () -> Int in
            if files[name] == nil { files[name] = File(bytes: [], durable: 0) }
            return files[name]!.bytes.count
        }
        return MemoryAppendLog(storage: self, name: name, size: size)
    }

    func truncate(_ name: String, to length: Int) throws {
        try lock.withLock {
            guard var f = files[name] else { throw missing(name, "truncate") }
            f.bytes = Array(f.bytes.prefix(length))
            f.durable = min(f.durable, length)
            files[name] = f
        }
    }

    func lockForWriting() throws -> StorageLock {
        try lock.withLock {
            guard !locked, readers == 0 else { throw TidepoolError.locked(path: location) }
            locked = true
        }
        return MemoryLock { [weak self] in self?.lock.withLock { self?.locked = false } }
    }

    func lockForReading() throws -> StorageLock {
        try lock.withLock {
            guard !locked else { throw TidepoolError.locked(path: location) }
            readers += 1
        }
        return MemoryLock { [weak self] in self?.lock.withLock { self?.readers -= 1 } }
    }
}

private final class MemoryImmutableWriter: ImmutableFileWriter {
    let storage: MemoryStorage
    let name: String
    private var buffer: [UInt8] = []
    private var done = false
    var bytesWritten: Int { buffer.count }

    init(storage: MemoryStorage, name: String) {
        self.storage = storage
        self.name = name
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws { buffer.append(contentsOf: bytes) }

    func commit() throws {
        guard !done else { throw TidepoolError.closed("file \(name) already committed") }
        done = true
        storage.publish(name, buffer)
    }

    func abort() { done = true }
}

private final class MemoryAppendLog: AppendLog, @unchecked Sendable {
    let storage: MemoryStorage
    let name: String
    private(set) var size: Int

    init(storage: MemoryStorage, name: String, size: Int) {
        self.storage = storage
        self.name = name
        self.size = size
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws { size = storage.append(name, bytes) }
    func sync() throws { storage.sync(name) }
    func truncate(to length: Int) throws {
        try storage.truncate(name, to: length)
        size = length
    }
    func close() {}
}

private final class MemoryLock: StorageLock, @unchecked Sendable {
    private var onRelease: (() -> Void)?
    init(_ onRelease: @escaping () -> Void) { self.onRelease = onRelease }
    func release() {
        onRelease?()
        onRelease = nil
    }
    deinit { release() }
}
