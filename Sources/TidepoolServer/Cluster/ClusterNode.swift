import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import Tidepool
import TidepoolS3

/// This node's collections in a cluster (`serve --peers`): a database per collection
/// (`ClusterStorage`), opened on first use, written here when this node is the collection's
/// writer and followed otherwise. Which node writes a collection is decided per collection:
/// the first live peer in its rendezvous order (`PeerHealth`) creates it and takes it over when
/// its writer is gone (`ClusterOwnership`, `ClusterWriteRouting`); the store's fencing keeps
/// two nodes that both believe they own it from both acknowledging writes.
public final class ClusterNode: ServedCollections {
    public struct Settings: Sendable {
        /// This node's URL as its peers know it (`--advertise-url`); nil for a query node that has none.
        public var selfURL: String?
        /// Every node that may own collections (`--peers`).
        public var peers: [String]
        /// Whether this node may own collections (`--role ingest` or `all`): it must be one of `peers`.
        public var canOwn: Bool
        /// How long a collection's writer may fail its health checks before another node takes it over.
        public var takeoverAfter: Duration
        /// How often the peers' health is checked.
        public var checkEvery: Duration
        /// How stale an eventual read may be: one of a collection more than twice this behind its
        /// writer starts a catch-up beside it (ten times behind, it catches up first).
        public var followEvery: Duration
        /// How each collection's database is opened (sync policy, logger; `readOnly` is set per role).
        public var databaseOptions: DatabaseOptions
        /// A collection this node follows and has not used for this long is closed (its cached
        /// files may then be evicted; its next use opens it again), so a node in front of many
        /// collections holds only those in use. Longer than any request may take.
        public var closeIdleAfter: Duration = .seconds(300)

        public init(
            selfURL: String?, peers: [String], canOwn: Bool, takeoverAfter: Duration = .seconds(3),
            checkEvery: Duration = .milliseconds(250), followEvery: Duration = .seconds(1), databaseOptions: DatabaseOptions
        ) {
            self.selfURL = selfURL
            self.peers = peers
            self.canOwn = canOwn
            self.takeoverAfter = takeoverAfter
            self.checkEvery = checkEvery
            self.followEvery = followEvery
            self.databaseOptions = databaseOptions
        }
    }

    public let storage: ClusterStorage
    public let settings: Settings
    let health: PeerHealth
    var logger: Logger { settings.databaseOptions.logger }

    struct Slot {
        var database: Database
        var isWriter: Bool
        var lastUse: ContinuousClock.Instant
    }
    private let slots = NIOLockedValueBox<[String: Slot]>([:])
    /// Set once the node shuts down: it takes nothing over from then on (its peers take its
    /// collections as soon as its `/ready` answers 503).
    private let draining = ManagedAtomic(false)
    /// Opening, taking over or giving up one collection at a time.
    private let flights = KeyedFlights()

    public init(storage: ClusterStorage, settings: Settings) {
        self.storage = storage
        self.settings = settings
        health = PeerHealth(
            selfURL: settings.selfURL, peers: settings.peers, takeoverAfter: settings.takeoverAfter, location: storage.location)
    }

    // MARK: Serving

    public func database(for name: String) throws -> Database {
        while true {
            if let db = touch(name) { return db }
            try flights.run(name) {
                guard slots.withLockedValue({ $0[name] }) == nil else { return }
                let db = try openFollowing(name)
                slots.withLockedValue { $0[name] = Slot(database: db, isWriter: false, lastUse: .now) }
            }
        }
    }

    /// The collection's database if open, marked as used now.
    private func touch(_ name: String) -> Database? {
        slots.withLockedValue { s in
            s[name]?.lastUse = .now
            return s[name]?.database
        }
    }

    public func openDatabase(for name: String) -> Database? { touch(name) }

    /// The collection's database if open, without counting as a use (the background work's
    /// look must not keep a collection from going idle).
    func peekDatabase(for name: String) -> Database? { slots.withLockedValue { $0[name]?.database } }

    public func hasCollection(_ name: String) -> Bool { slots.withLockedValue { $0[name] }?.database.hasCollection(name) ?? false }

    /// Whether this node writes collection `name` now.
    public func isWriter(of name: String) -> Bool { slots.withLockedValue { $0[name]?.isWriter ?? false } }

    /// Every collection in the store, opening those this node has not used (16 at a time).
    public func collectionNames() throws -> [String] {
        let names = try storage.collectionNames()
        let results = runOnThreads(names.count, width: 16) { [self] i in try database(for: names[i]) }
        return zip(names, results).compactMap { name, r in (try? r.get())?.hasCollection(name) == true ? name : nil }
    }

    public func createCollection(_ name: String, dimension: Int, metric: Metric, config: CollectionConfig) throws -> Collection {
        do {
            if try database(for: name).hasCollection(name) { throw TidepoolError.collectionExists(name) }
        } catch TidepoolError.collectionNotFound {}
        return try becomeWriter(name).createCollection(name, dimension: dimension, metric: metric, config: config)
    }

    public func dropCollection(_ name: String) throws { try database(for: name).dropCollection(name) }

    /// Not in a cluster yet: each collection is a database of its own there, and a branch
    /// would have to share files across two of them.
    public func createBranch(_ name: String, from source: String, at version: VersionSelector?) throws -> BranchReport {
        throw TidepoolError.invalidArgument("branches are not supported in a cluster (serve --peers) yet; back up and restore instead")
    }

    public var openDatabases: [Database] { slots.withLockedValue { $0.values.map(\.database) } }

    public var openCollectionCount: Int { slots.withLockedValue { $0 }.filter { $0.value.database.hasCollection($0.key) }.count }

    public var objectStorageMetrics: ObjectStorageMetrics? { storage.metrics }

    public func writerWasSuperseded(_ name: String) -> Bool { (try? becomeFollower(name)) != nil }

    /// Followed collections catch up only when read: an eventual read of one more than this
    /// behind starts a catch-up beside it (ten times behind, it waits for one).
    public var eventualStalenessBound: Duration? { settings.followEvery * 2 }

    public func close() throws {
        let all = slots.withLockedValue { s in
            defer { s = [:] }
            return Array(s.values)
        }
        var first: (any Error)?
        for slot in all {
            do { try slot.database.close() } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }

    /// The node is shutting down: it takes no collection over from now on.
    func beginDraining() { draining.store(true, ordering: .relaxed) }

    // MARK: Changing roles

    /// Opens collection `name` as its writer (taking it over: that fences whoever wrote it
    /// before), closing the database this node followed it with. When that fails (another node
    /// won, the store is unreachable) the node follows it again and the error is thrown.
    @discardableResult
    func becomeWriter(_ name: String) throws -> Database {
        guard settings.canOwn else { throw TidepoolError.readOnly("this node does not own collections (--role query)") }
        guard !draining.load(ordering: .relaxed) else { throw TidepoolError.closed("this node is shutting down") }
        while true {
            if let slot = slots.withLockedValue({ $0[name] }), slot.isWriter { return slot.database }
            try flights.run(name) {
                let old = slots.withLockedValue { $0.removeValue(forKey: name) }
                if let old, old.isWriter {
                    slots.withLockedValue { $0[name] = old }
                    return
                }
                let started = ContinuousClock.now
                try? old?.database.close()
                do {
                    let db = try storage.openDatabase(collection: name, asWriter: true, options: settings.databaseOptions)
                    slots.withLockedValue { $0[name] = Slot(database: db, isWriter: true, lastUse: .now) }
                    logger.notice(
                        "writing collection '\(name)'", metadata: ["switch_ms": "\((ContinuousClock.now - started).milliseconds)"])
                } catch {
                    logger.warning("taking over collection '\(name)' failed: \(error)")
                    if let db = try? openFollowing(name) {
                        slots.withLockedValue { $0[name] = Slot(database: db, isWriter: false, lastUse: .now) }
                    }
                    throw error
                }
            }
        }
    }

    /// Follows collection `name` instead of writing it (another node took it over).
    func becomeFollower(_ name: String) throws {
        try flights.run(name) {
            guard let old = slots.withLockedValue({ $0[name] }), old.isWriter else { return }
            slots.withLockedValue { _ = $0.removeValue(forKey: name) }
            do { try old.database.close() } catch { logger.info("closing the superseded writer of '\(name)': \(error)") }
            let db = try openFollowing(name)
            slots.withLockedValue { $0[name] = Slot(database: db, isWriter: false, lastUse: .now) }
            logger.notice("another node took over collection '\(name)': following it")
        }
    }

    private func openFollowing(_ name: String) throws -> Database {
        try storage.openDatabase(collection: name, asWriter: false, options: settings.databaseOptions)
    }

    /// Closes the collections followed here that were not used for `settings.closeIdleAfter`
    /// (none that is being opened or switched); returns how many.
    @discardableResult
    func closeIdle() -> Int {
        let now = ContinuousClock.now
        let idle = slots.withLockedValue { s -> [Database] in
            let names = s.filter { !$0.value.isWriter && now - $0.value.lastUse > settings.closeIdleAfter && !flights.isRunning($0.key) }
                .map(\.key)
            return names.compactMap { s.removeValue(forKey: $0)?.database }
        }
        for db in idle { try? db.close() }
        return idle.count
    }

    /// Every collection followed here, with the writer each names.
    func followed() -> [(name: String, writer: String?)] {
        slots.withLockedValue { $0 }.filter { !$0.value.isWriter }.map { ($0.key, $0.value.database.writerURL) }
    }

    /// The collections written here that were used within `recent`.
    func written(usedWithin recent: Duration) -> [(name: String, database: Database)] {
        let now = ContinuousClock.now
        return slots.withLockedValue { $0 }.filter { $0.value.isWriter && now - $0.value.lastUse < recent }
            .map { ($0.key, $0.value.database) }
    }

    /// Whether this node should take over collection `name`, whose database names `writer`:
    /// it names this node (a process before this one wrote it), or its writer is gone and this
    /// node comes first among the live peers in the collection's rendezvous order.
    func shouldTakeOver(_ name: String, writer: String?) -> Bool {
        guard settings.canOwn, !draining.load(ordering: .relaxed), let me = settings.selfURL else { return false }
        if writer == me { return true }
        if let writer, !health.isGone(writer) { return false }
        return health.owner(of: name) == me
    }
}
