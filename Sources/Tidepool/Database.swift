import Foundation
import Logging

/// Settings for opening a database.
public struct DatabaseOptions: Sendable {
    /// How durable a write is when `upsert`/`delete` returns. Default `.always`.
    public var syncPolicy: SyncPolicy
    /// For `.batched`: the longest a written operation waits for its fsync.
    public var syncInterval: Double
    /// Recompute every segment checksum on open (fast with hardware CRC32C).
    public var verifyChecksumsOnOpen: Bool
    /// Threads used to build HNSW graphs.
    public var buildThreads: Int
    public var logger: Logger

    public init(syncPolicy: SyncPolicy = .always, syncInterval: Double = 0.05, verifyChecksumsOnOpen: Bool = true,
                buildThreads: Int = ProcessInfo.processInfo.activeProcessorCount,
                logger: Logger = Logger(label: "tidepool")) {
        self.syncPolicy = syncPolicy
        self.syncInterval = syncInterval
        self.verifyChecksumsOnOpen = verifyChecksumsOnOpen
        self.buildThreads = max(1, buildThreads)
        self.logger = logger
    }
}

/// A Tidepool database: a directory holding named collections.
///
/// Opening recovers from any crash (replaying the write-ahead log). Only one
/// process may open a directory at a time: a second gets `TidepoolError.locked`.
public final class Database: @unchecked Sendable {
    public let path: String
    let storage: LocalStorage
    let options: DatabaseOptions
    private let directoryLock: DirectoryLock
    private let lock = NSLock()
    private var manifest: Manifest
    private var open: [String: Collection] = [:]
    private var syncTimer: DispatchSourceTimer?
    private var isClosed = false

    /// Opens the database at `path`, creating the directory if needed.
    public init(path: String, options: DatabaseOptions = DatabaseOptions()) throws {
        self.path = path
        self.options = options
        storage = try LocalStorage(root: path)
        directoryLock = try DirectoryLock(directory: path)
        if let bytes = try storage.readManifest() {
            manifest = try Manifest.decode(bytes, file: storage.path(LocalStorage.manifestName))
        } else {
            manifest = Manifest()
        }
        try? storage.delete(LocalStorage.manifestName + ".tmp")
        let known = Set(manifest.collections.map(\.name))
        for dir in try storage.list("collections") where !known.contains(dir) {
            options.logger.info("removing files of dropped collection '\(dir)'")
            storage.deleteFolder("collections/" + dir)
        }
        for entry in manifest.collections {
            open[entry.name] = try Collection(database: self, entry: entry, storage: storage, options: options)
        }
        if options.syncPolicy == .batched {
            let t = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
            t.schedule(deadline: .now() + options.syncInterval, repeating: options.syncInterval)
            t.setEventHandler { [weak self] in self?.syncAll() }
            t.resume()
            syncTimer = t
        }
    }

    deinit {
        syncTimer?.cancel()
    }

    private func syncAll() {
        for c in lock.withLock({ Array(open.values) }) { c.syncWAL() }
    }

    static func validateName(_ name: String) throws {
        let ok = !name.isEmpty && name.utf8.count <= 64 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "_-.".unicodeScalars.contains($0) }
        if !ok {
            throw TidepoolError.invalidArgument("collection name '\(name)' must be 1-64 ASCII letters, digits, '_', '-' or '.', not starting with '.'")
        }
    }

    /// Creates a collection with a fixed dimension and metric.
    @discardableResult
    public func createCollection(_ name: String, dimension: Int, metric: Metric,
                                 config: CollectionConfig = CollectionConfig()) throws -> Collection {
        try Database.validateName(name)
        guard (1...65_536).contains(dimension) else {
            throw TidepoolError.invalidArgument("dimension must be in 1...65536, got \(dimension)")
        }
        try config.validate(dimension: dimension)
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed else { throw TidepoolError.closed("database '\(path)' is closed") }
        guard open[name] == nil else { throw TidepoolError.collectionExists(name) }
        let entry = Manifest.CollectionEntry(name: name, dimension: dimension, metric: metric, config: config,
                                             flushedSeq: 0, nextSegmentID: 1, segments: [],
                                             schema: config.attributeTypes ?? [:])
        storage.deleteFolder("collections/" + name)
        var next = manifest
        next.collections.append(entry)
        try writeLocked(next)
        let c = try Collection(database: self, entry: entry, storage: storage, options: options)
        open[name] = c
        return c
    }

    /// The collection named `name`.
    public func collection(_ name: String) throws -> Collection {
        try lock.withLock {
            guard !isClosed else { throw TidepoolError.closed("database '\(path)' is closed") }
            guard let c = open[name] else { throw TidepoolError.collectionNotFound(name) }
            return c
        }
    }

    /// The names of all collections, sorted.
    public var collectionNames: [String] { lock.withLock { open.keys.sorted() } }

    /// Deletes a collection and its files.
    public func dropCollection(_ name: String) throws {
        let c: Collection = try lock.withLock {
            guard let c = open[name] else { throw TidepoolError.collectionNotFound(name) }
            return c
        }
        // Close first: its background flush or compaction finishes before it leaves the manifest.
        try c.close()
        try lock.withLock {
            var next = manifest
            next.collections.removeAll { $0.name == name }
            try writeLocked(next)
            open[name] = nil
        }
        storage.deleteFolder("collections/" + name)
    }

    /// Records a collection's new state in the manifest (atomically).
    func persist(collection entry: Manifest.CollectionEntry) throws {
        try lock.withLock {
            var next = manifest
            guard let i = next.collections.firstIndex(where: { $0.name == entry.name }) else {
                throw TidepoolError.collectionNotFound(entry.name)
            }
            next.collections[i] = entry
            try writeLocked(next)
        }
    }

    private func writeLocked(_ next: Manifest) throws {
        var next = next
        next.generation = manifest.generation + 1
        try storage.swapManifest(try next.encoded())
        manifest = next
    }

    /// Finishes background work, syncs the logs and releases the directory lock.
    public func close() throws {
        let cols: [Collection] = lock.withLock {
            if isClosed { return [] }
            isClosed = true
            return Array(open.values)
        }
        syncTimer?.cancel()
        syncTimer = nil
        var firstError: Error?
        for c in cols {
            do { try c.close() } catch { if firstError == nil { firstError = error } }
        }
        directoryLock.release()
        if let firstError { throw firstError }
    }

    /// Opens the database at `path` (recovering it), recomputes every checksum and checks
    /// invariants. Returns the problems found; empty means sound.
    public static func verify(path: String, logger: Logger = Logger(label: "tidepool")) -> [String] {
        guard FileManager.default.fileExists(atPath: path + "/" + LocalStorage.manifestName) else {
            return ["no database at '\(path)' (missing MANIFEST)"]
        }
        do {
            let db = try Database(path: path, options: DatabaseOptions(verifyChecksumsOnOpen: true, logger: logger))
            defer { try? db.close() }
            var problems: [String] = []
            for name in db.collectionNames {
                problems += try db.collection(name).checkInvariants()
            }
            return problems
        } catch {
            return ["\(error)"]
        }
    }
}
