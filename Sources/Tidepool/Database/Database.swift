import Foundation
import Logging
import TidepoolS3

/// A Tidepool database: a directory holding named collections.
///
/// Opening recovers from any crash (replaying the write-ahead log). Only one
/// process may open a directory at a time: a second gets `TidepoolError.locked`.
public final class Database: CollectionCatalog, @unchecked Sendable {
    /// Where the database lives (a directory path).
    public let path: String
    let storage: any StorageBackend
    let options: DatabaseOptions
    /// Exclusive for a writer, shared for read-only opens.
    private let storageLock: StorageLock
    let lock = NSLock()
    /// Serializes manifest commits; taken before `lock`, so that a flush's commit (on object
    /// storage a round trip to the store) never holds up `collection(_:)` and every request with it.
    private let commitLock = NSLock()
    var manifest: Manifest
    var open: [String: Collection] = [:]
    /// Collections that failed to open (a damaged file, say), with why; the others work.
    var failed: [String: TidepoolError] = [:]
    /// On a query node: collections in the manifest not opened yet (opened on first use,
    /// `Database+OpenOnUse.swift`).
    var unopened: Set<String> = []
    let opening = OpenFlights()
    /// One restore at a time (each closes and replaces a collection object).
    let restoreLock = NSLock()
    /// Names a create, branch or backup restore has claimed and not installed yet.
    var reserved: Set<String> = []
    private var syncTimer: DispatchSourceTimer?
    /// A read-only database on object storage: its catching up with the writer (`catchUp`).
    let follower = Follower()
    private var isClosed = false

    /// Opens the database at `path`, creating the directory if needed (unless `options` say
    /// `readOnly`, or not `createIfMissing`: then a path without a database is an error).
    public convenience init(path: String, options: DatabaseOptions = DatabaseOptions()) throws {
        let location = StorageLocation.directory(path)
        if !options.createIfMissing && !location.hasDatabase {
            throw TidepoolError.invalidArgument("no database at '\(path)' (no MANIFEST there)")
        }
        try self.init(storage: location.open(create: options.createIfMissing), path: path, options: options)
    }

    /// Opens the database `storage` holds (any `StorageBackend`; tests bring their own).
    /// `whenAbsent` is thrown instead of the usual message when there is no database to open
    /// (a cluster's collection that does not exist).
    init(storage: any StorageBackend, path: String, options: DatabaseOptions, whenAbsent: TidepoolError? = nil) throws {
        self.path = path
        var options = options
        options.budgetLedger = options.memoryBudget.map { MemoryBudget(limit: $0) }
        self.options = options
        self.storage = storage
        storageLock = try options.readOnly ? storage.lockForReading() : storage.lockForWriting()
        let stored = try storage.readManifest()
        // Listed only where used (a query node's start pays no LIST): to tell a lost manifest
        // from an empty database, and for a writer to find dropped collections' files.
        let existing = stored == nil || !options.readOnly ? try storage.list("collections") : []
        if stored == nil && existing.isEmpty && !options.createIfMissing {
            throw whenAbsent ?? TidepoolError.invalidArgument("no database at '\(path)' (no manifest there)")
        }
        if stored == nil && existing.isEmpty, let objects = storage as? ObjectStorage, try objects.holdsACluster() {
            throw TidepoolError.invalidArgument(
                "\(path) holds a cluster (a database per collection, `serve --peers`), not one database: open it as a cluster")
        }
        if let bytes = stored {
            manifest = try Manifest.decode(bytes, file: storage.manifestDisplayPath)
        } else if existing.isEmpty && !options.readOnly {
            manifest = Manifest()
        } else {
            // Never treat a lost manifest as "no collections": that would delete them all.
            throw TidepoolError.corrupt(
                file: storage.manifestDisplayPath, offset: 0,
                reason: existing.isEmpty
                    ? "no database here (no MANIFEST)"
                    : "no MANIFEST, but collections/ holds \(existing.joined(separator: ", ")); nothing was changed. "
                        + "Restore MANIFEST from a backup; the segment and WAL files are intact")
        }
        if !options.readOnly {
            // A new database has a manifest from the start, so the directory is recognizably one.
            // On object storage a writer commits a manifest version on opening: a predecessor
            // that is only paused then loses its next manifest commit (its WAL is fenced by each
            // collection's first WAL object, `Collection.claimNextLogObject`).
            // Its segment ids start in a range of its own (the new generation × 2^32), so a
            // predecessor's flush that uploads a segment after this open can never take a name
            // this writer will use.
            if storage.logsAreObjects {
                let base = (manifest.generation + 1) << 32
                for i in manifest.collections.indices where manifest.collections[i].nextSegmentID < base {
                    manifest.collections[i].nextSegmentID = base
                }
            }
            let previousWriter = manifest.writer
            if let objects = storage as? ObjectStorage { manifest.writer = objects.advertisedURL }
            if manifest.generation == 0 || storage.logsAreObjects { try commit(manifest) }
            // A predecessor that served its head may answer for a little longer (WriterLease).
            if previousWriter != nil, let objects = storage as? ObjectStorage { objects.lease.holdAcknowledgements() }
            try? storage.removeManifestLeftovers()
            // Only a valid manifest says a folder is garbage: one it does not list was dropped.
            let known = Set(manifest.collections.map(\.name))
            for dir in existing where !known.contains(dir) {
                options.logger.info("removing files of dropped collection '\(dir)'")
                try? storage.deleteFolder("collections/" + dir)
            }
        }
        if opensOnUse {
            unopened = Set(manifest.collections.map(\.name))
        } else {
            openAll()
        }
        if options.syncPolicy == .batched && !options.readOnly {
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

    /// Opens every collection of the manifest, side by side (on object storage each waits on its
    /// downloads), 8 at a time.
    private func openAll() {
        let entries = manifest.collections
        let opened = runOnThreads(entries.count, width: 8) { [self] i in
            try Collection(catalog: self, entry: entries[i], storage: storage, options: options)
        }
        for (entry, result) in zip(entries, opened) {
            // One damaged collection must not take the others down: it reports its error on use.
            do {
                open[entry.name] = try result.get()
            } catch {
                let e =
                    error as? TidepoolError ?? .io(path: storage.displayPath("collections/" + entry.name), operation: "open", errno: EIO)
                options.logger.error("collection '\(entry.name)' cannot be opened; the others are served: \(e)")
                failed[entry.name] = e
            }
        }
    }

    private func syncAll() {
        for c in lock.withLock({ Array(open.values) }) { c.syncWAL() }
    }

    /// Throws `readOnly` for `what` when the database was opened read-only.
    func refuseIfReadOnly(_ what: String) throws {
        if options.readOnly { throw TidepoolError.readOnly("database '\(path)' was opened read-only: cannot \(what)") }
    }

    /// Collection and snapshot names: also folder and file names, so no path can hide in one.
    static func validateName(_ name: String, what: String = "collection") throws {
        let ok =
            !name.isEmpty && name.utf8.count <= 64 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "_-.".unicodeScalars.contains($0) }
        if !ok {
            throw TidepoolError.invalidArgument(
                "\(what) name '\(name)' must be 1-64 ASCII letters, digits, '_', '-' or '.', not starting with '.'")
        }
    }

    /// Creates a collection with a fixed dimension and metric.
    @discardableResult
    public func createCollection(
        _ name: String, dimension: Int, metric: Metric,
        config: CollectionConfig = CollectionConfig()
    ) throws -> Collection {
        try refuseIfReadOnly("create collection '\(name)'")
        try Database.validateName(name)
        guard (1...65_536).contains(dimension) else {
            throw TidepoolError.invalidArgument("dimension must be in 1...65536, got \(dimension)")
        }
        try config.validate(dimension: dimension)
        let generation = lock.withLock { manifest.generation }
        let entry = Manifest.CollectionEntry(
            name: name, dimension: dimension, metric: metric, config: config,
            flushedSeq: 0, nextSegmentID: storage.logsAreObjects ? max(1, generation << 32) : 1, segments: [],
            schema: config.attributeTypes ?? [:])
        try reserve(name)
        defer { release(name) }
        try? storage.deleteFolder("collections/" + name)
        try installCollection(entry)
        return try collection(name)
    }

    /// Adds `entry` to the manifest and opens it (a new collection, or a branch whose files are
    /// in place). Returns the manifest's size in bytes. A collection that fails to open leaves
    /// nothing behind: the manifest goes back and its folder is removed.
    /// With `openNow` false (a branch) it is opened on first use instead, as a query node's
    /// collections are.
    @discardableResult
    func installCollection(_ entry: Manifest.CollectionEntry, openNow: Bool = true) throws -> Int {
        let name = entry.name
        // `commitLock` keeps other commits out; `lock` is held only to look and to install, never
        // across a store round trip (health checks and lookups take it on the event loop).
        commitLock.lock()
        defer { commitLock.unlock() }
        var next: Manifest = try lock.withLock {
            guard !isClosed else { throw TidepoolError.closed("database '\(path)' is closed") }
            guard open[name] == nil, failed[name] == nil, !unopened.contains(name) else { throw TidepoolError.collectionExists(name) }
            return manifest
        }
        next.collections.append(entry)
        let bytes = try commit(next)
        guard openNow else {
            lock.withLock { _ = unopened.insert(name) }
            return bytes
        }
        do {
            let c = try Collection(catalog: self, entry: entry, storage: storage, options: options)
            lock.withLock { open[name] = c }
            return bytes
        } catch {
            // Nothing half-made stays behind to fail every later open: the manifest goes back.
            var back = lock.withLock { manifest }
            back.collections.removeAll { $0.name == name }
            _ = try? commit(back)
            try? storage.deleteFolder("collections/" + name)
            throw error
        }
    }

    /// The collection named `name` (on a query node, opened now if this is its first use).
    public func collection(_ name: String) throws -> Collection {
        while true {
            let found: Collection? = try lock.withLock {
                guard !isClosed else { throw TidepoolError.closed("database '\(path)' is closed") }
                if let e = failed[name] { throw e }
                if let c = open[name] { return c }
                guard unopened.contains(name) else { throw TidepoolError.collectionNotFound(name) }
                return nil
            }
            if let found { return found }
            try openOnUse(name)
        }
    }

    /// Whether a collection named `name` exists (opened or not), without opening it.
    public func hasCollection(_ name: String) -> Bool {
        lock.withLock { open[name] != nil || failed[name] != nil || unopened.contains(name) }
    }

    /// The collections opened so far, by name: on a query node those used or prewarmed since
    /// it started; elsewhere all but those that failed to open.
    public var openCollections: [String: Collection] { lock.withLock { open } }

    /// The names of all collections, sorted (those that failed to open, and on a query node
    /// those not opened yet, too).
    public var collectionNames: [String] { lock.withLock { (Array(open.keys) + Array(failed.keys) + Array(unopened)).sorted() } }

    /// The collections that failed to open, and why (file and offset of the damage): they answer
    /// every use with that error, while the other collections are served.
    public var unavailableCollections: [String: TidepoolError] { lock.withLock { failed } }

    /// Deletes a collection and its files.
    public func dropCollection(_ name: String) throws {
        try refuseIfReadOnly("drop collection '\(name)'")
        let c: Collection? = try lock.withLock {
            // A collection that cannot open can still be dropped, and one not opened yet needs no closing.
            if failed[name] != nil || unopened.contains(name) { return nil }
            guard let c = open[name] else { throw TidepoolError.collectionNotFound(name) }
            return c
        }
        // Close first: its background work stops (a flush or compaction already writing finishes)
        // before it leaves the manifest.
        try c?.close(abandoningBackgroundWork: true)
        try commitLock.withLock {
            var next = lock.withLock { manifest }
            next.collections.removeAll { $0.name == name }
            try commit(next)
            lock.withLock {
                open[name] = nil
                failed[name] = nil
                unopened.remove(name)
            }
        }
        try? storage.deleteFolder("collections/" + name)
    }

    /// Records a collection's new state in the manifest (atomically).
    @discardableResult
    func persist(collection entry: Manifest.CollectionEntry, newVersion: Bool = true) throws -> Manifest.CollectionEntry {
        try refuseIfReadOnly("change collection '\(entry.name)'")
        return try commitLock.withLock {
            var next = lock.withLock { manifest }
            guard let i = next.collections.firstIndex(where: { $0.name == entry.name }) else {
                throw TidepoolError.collectionNotFound(entry.name)
            }
            next.generation += 1
            var entry = entry
            if var retired = entry.retired {
                for j in retired.indices where retired[j].generation == 0 { retired[j].generation = next.generation }
                entry.retired = retired
            }
            let previous = next.collections[i]
            if entry.restores == nil { entry.restores = previous.restores }  // only restores change it
            if newVersion {
                entry.version = (previous.version ?? 0) + 1
                entry.versionTime = Date().timeIntervalSince1970
            } else {
                (entry.version, entry.versionTime) = (previous.version, previous.versionTime)
            }
            next.collections[i] = entry
            // The commit goes out without `lock` held: lookups go on meanwhile; `commitLock`
            // keeps any other commit from starting from the same manifest.
            try storage.swapManifest(try next.encoded())
            lock.withLock { manifest = next }
            return entry
        }
    }

    var manifestGeneration: UInt64 { lock.withLock { manifest.generation } }

    /// Commits `next` as the manifest, one generation on. The caller holds `commitLock` (or is
    /// `init`), not `lock`: the swap is a store round trip on object storage.
    @discardableResult
    private func commit(_ next: Manifest) throws -> Int {
        var next = next
        next.generation = lock.withLock { manifest.generation } + 1
        let bytes = try next.encoded()
        try storage.swapManifest(bytes)
        lock.withLock { manifest = next }
        return bytes.count
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
        follower.stop()
        var firstError: Error?
        for c in cols {
            do { try c.close() } catch { if firstError == nil { firstError = error } }
        }
        storageLock.release()
        if let firstError { throw firstError }
    }
}
