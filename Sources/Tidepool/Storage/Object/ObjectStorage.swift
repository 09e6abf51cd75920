import Foundation
import Logging
import TidepoolS3

/// The storage backend on an object store: the store holds everything durable, a local cache
/// directory holds copies of immutable files for mapping.
///
/// How each kind of file lives on objects:
/// - **Immutable files** (segments): written to a cache file, uploaded whole on commit (in parts
///   when large), then kept in the cache; mapped from the cache, downloaded on first use.
/// - **The manifest**: numbered versions `manifest/<v>` (20 digits), each created with
///   `If-None-Match: *`. A commit that finds its version taken means another writer committed
///   first: it fails with `TidepoolError.fenced` and nothing of it is visible.
/// - **WAL files**: one object per group commit (`logsAreObjects`), each a whole WAL file named
///   by its first sequence number and created with `If-None-Match: *`, so two writers can never
///   both commit the same sequence numbers (`ObjectLog`).
final class ObjectStorage: StorageBackend, @unchecked Sendable {
    let store: any ObjectStore
    let cache: ObjectFileCache
    /// What this storage's names are prefixed with in `cache`: empty for a database that has
    /// the cache to itself, `c/<name>/` for a cluster's collection database (`ClusterStorage`),
    /// whose cache every collection of the node shares.
    let cacheScope: String
    let logger: Logger
    /// How many manifest versions before the current one stay in the store (readers that loaded
    /// an older one keep finding it).
    let retainedManifestVersions: UInt64 = 16
    /// Identifies this process's commits (WAL objects and manifest versions) in commit tokens.
    let writerID = String(UInt64.random(in: 1...UInt64.max), radix: 16)

    /// The URL this process serves on as the writer, recorded in the manifests it commits (query
    /// nodes ask it for its head and forward writes to it); nil when it serves none.
    let advertisedURL: String?
    /// When this process, as the writer, may answer for its head (`Database.writerHead`).
    let lease = WriterLease()

    private let lock = NSLock()
    /// WAL objects fetched ahead of replay (`prefetch`), taken by `map`.
    private var prefetched: [String: [UInt8]] = [:]
    /// The manifest version last read or written (0: none yet).
    private var manifestVersion: UInt64 = 0
    private var tokenCounter: UInt64 = 0

    var location: String { store.location }
    var logsAreObjects: Bool { true }

    let commitPacing: (gather: Duration, minSpacing: Duration)
    /// How long a segment file a compaction replaced stays at least (`Collection.collectRetiredFiles`).
    let garbageGrace: Duration
    var retiresFilesLazily: Bool { true }
    var retainedManifestGenerations: UInt64 { retainedManifestVersions }

    init(
        store: any ObjectStore, cache: ObjectFileCache, cacheScope: String = "", advertisedURL: String? = nil,
        commitPacing: (gather: Duration, minSpacing: Duration) = (.zero, .zero), garbageGrace: Duration = .seconds(600),
        logger: Logger = Logger(label: "tidepool")
    ) {
        self.garbageGrace = garbageGrace
        self.cacheScope = cacheScope
        self.store = store
        self.advertisedURL = advertisedURL
        self.commitPacing = commitPacing
        self.cache = cache
        self.logger = logger
    }

    func displayPath(_ name: String) -> String { store.url(name) }

    /// `name`'s key in the cache.
    func cached(_ name: String) -> String { cacheScope + name }
    var manifestDisplayPath: String { store.url(Self.manifestKey(lock.withLock { manifestVersion })) }

    var currentManifestVersion: UInt64 { lock.withLock { manifestVersion } }
    func setManifestVersion(_ v: UInt64) { lock.withLock { manifestVersion = v } }

    /// A token no other commit has: this process's id and a counter.
    func nextToken() -> String {
        lock.withLock {
            tokenCounter += 1
            return "\(writerID)-\(tokenCounter)"
        }
    }

    // MARK: - Immutable files

    func createImmutable(_ name: String) throws -> ImmutableFileWriter {
        ObjectFileWriter(name: name, storage: self, temp: try cache.createTemporary())
    }

    /// A branch's file: a copy inside the store (CopyObject on S3), so none of its bytes pass
    /// through this process; the store holds the bytes twice (it has no links).
    func share(_ source: String, as target: String) throws -> Int {
        let size = try self.size(of: source)
        _ = try store.copy(source, to: target)
        return size
    }

    func map(_ name: String) throws -> MappedFile {
        if let bytes = lock.withLock({ prefetched.removeValue(forKey: name) }) { return MappedFile.owning(bytes, name: displayPath(name)) }
        if let copy = try cache.map(cached(name)) { return copy }
        // WAL files are read once, by replay: into memory, not the cache.
        guard Self.isCacheable(name) else {
            guard let bytes = try store.get(name, range: nil) else { throw missing(name, "GET") }
            return MappedFile.owning(bytes, name: displayPath(name))
        }
        try cache.fill(cached(name)) { temp in try self.download(name, into: temp) }
        guard let copy = try cache.map(cached(name)) else { throw missing(name, "cache") }
        return copy
    }

    /// A segment arrives by range into the cache (see `ObjectFileCache.mapArriving`); other files
    /// are mapped whole.
    func mapArriving(_ name: String, size: Int) throws -> ArrivingFile {
        guard Self.isCacheable(name) else { return ArrivingFile(complete: try map(name)) }
        return try cache.mapArriving(cached(name), size: size) { [self] range in
            guard let bytes = try store.get(name, range: range) else { throw missing(name, "GET range") }
            guard bytes.count == range.count else {
                throw TidepoolError.storage(
                    "\(displayPath(name)) is shorter than the manifest says (range \(range) gave \(bytes.count) bytes)")
            }
            return bytes
        }
    }

    /// Fetches up to 256 MiB of the files not cached yet, 32 at a time: WAL replay then costs
    /// about one round trip per 32 objects instead of one per object. A failed fetch is left for
    /// `map` to retry (and report).
    func prefetch(_ names: [String]) {
        let wanted = names.filter { !Self.isCacheable($0) }
        var budget = 256 << 20
        for wave in stride(from: 0, to: wanted.count, by: 32) {
            let part = Array(wanted[wave..<min(wanted.count, wave + 32)])
            let results = runOnThreads(part.count) { i in try self.store.get(part[i], range: nil) }
            for (i, r) in results.enumerated() {
                guard case .success(let bytes?) = r else { continue }
                budget -= bytes.count
                lock.withLock { prefetched[part[i]] = bytes }
            }
            if budget <= 0 { return }
        }
    }

    /// Segments are cached; everything else is small and read once.
    static func isCacheable(_ name: String) -> Bool { name.hasSuffix(".tps") }

    /// Downloads an object into a cache file: in parallel 4 MiB ranges when it is large, 16 in
    /// flight (each GET waits on the store's latency far more than on bandwidth; 8 ranges of
    /// 8 MiB in waves left the link idle while the slowest of each wave finished).
    private func download(_ name: String, into temp: ObjectFileCache.Temporary) throws {
        guard let head = try store.head(name) else { throw missing(name, "HEAD") }
        let chunk = 4 << 20
        if head.size <= chunk {
            guard let bytes = try store.get(name, range: nil) else { throw missing(name, "GET") }
            try temp.write(bytes, at: 0)
            return
        }
        let ranges = stride(from: 0, to: head.size, by: chunk).map { $0..<min(head.size, $0 + chunk) }
        let writeLock = NSLock()
        let results = runOnThreads(ranges.count, width: 16) { i -> Void in
            guard let bytes = try self.store.get(name, range: ranges[i]), bytes.count == ranges[i].count else {
                throw TidepoolError.storage("\(self.displayPath(name)) changed or shrank while it was downloaded (range \(ranges[i]))")
            }
            try writeLock.withLock { try temp.write(bytes, at: ranges[i].lowerBound) }
        }
        for r in results { try r.get() }
    }

    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8] {
        if let bytes = try cache.read(cached(name), offset: offset, count: count) { return bytes }
        guard count > 0 else { return [] }
        guard let bytes = try store.get(name, range: offset..<(offset + count)) else { throw missing(name, "GET range") }
        return bytes
    }

    func size(of name: String) throws -> Int {
        if let size = cache.size(cached(name)) { return size }
        guard let head = try store.head(name) else { throw missing(name, "HEAD") }
        return head.size
    }

    func list(_ folder: String) throws -> [String] { try store.names(under: folder) }

    /// One listing, which carries the sizes (not a `HEAD` per object).
    func bytes(under folder: String) throws -> Int {
        try store.list(prefix: folder + "/").reduce(0) { $0 + $1.size }
    }

    func delete(_ name: String) throws {
        try store.delete(name)
        cache.remove(cached(name))
    }

    func deleteFolder(_ folder: String) throws {
        for entry in try store.list(prefix: folder + "/") { try store.delete(entry.key) }
        cache.removeFolder(cached(folder))
    }

    func missing(_ name: String, _ operation: String) -> TidepoolError {
        .io(path: displayPath(name), operation: operation, errno: ENOENT)
    }

    // MARK: - Logs

    func openAppendLog(_ name: String) throws -> AppendLog { ObjectLog(name: name, storage: self) }

    func waitBeforeAcknowledging() { lease.waitForHold() }

    /// The store's request counts and the cache's counters.
    var metrics: ObjectStorageMetrics {
        let c = cache.snapshot
        return ObjectStorageMetrics(
            cacheBytes: c.bytes, cacheCapacity: cache.capacity, cacheHits: c.hits, cacheMisses: c.misses, cacheEvictions: c.evictions,
            requests: store.requestStats)
    }

    func truncate(_ name: String, to length: Int) throws {
        // Objects are whole: a WAL object with a bad frame was damaged after it was written.
        throw TidepoolError.corrupt(
            file: displayPath(name), offset: length,
            reason: "a WAL object holds a damaged frame (objects are written whole, so this is damage)")
    }

    // MARK: - Locks

    /// Writers are kept apart by conditional creates, not a lock: a second writer's first commit
    /// fails with `fenced`.
    func lockForWriting() throws -> StorageLock { NoLock() }
    func lockForReading() throws -> StorageLock { NoLock() }

    private final class NoLock: StorageLock {
        func release() {}
    }
}
