import Foundation
import Logging

/// Where a document's current version lives: a container id (a segment's id, or a memtable's
/// with `memtableIDBit` set) and a row in it.
struct RowRef: Equatable {
    var container: UInt64
    var row: UInt32
}

/// Memtables get container ids with the top bit set; segments use their segment id.
let memtableIDBit: UInt64 = 1 << 63

/// A named set of documents with a fixed dimension and metric.
///
/// All methods are thread-safe. Writes are logged (group commit) before they are applied
/// (`Collection+Writing`), searches run on a snapshot and never wait for a flush or compaction
/// (`Collection+Search`), memtables become segments in the background (`Collection+Flushing`).
public final class Collection: @unchecked Sendable {
    /// The collection's name, unique in its database.
    public let name: String
    /// Every vector's number of components.
    public let dimension: Int
    /// The distance the collection ranks by.
    public let metric: Metric
    /// The collection's settings; index settings can change (``updateIndexSettings(_:)``).
    public var config: CollectionConfig { state.withLock { configValue } }

    let storage: any StorageBackend
    /// The collection's folder in `storage`: `segments/` and `wal/` under it.
    let folder: String
    let logger: Logger
    /// Where the collection's manifest entry is recorded (its database). Weak: a collection
    /// outliving its database gets a `closed` error, not a crash.
    weak var catalog: (any CollectionCatalog)?
    let distance: DistanceFunction
    /// Set once recovery has replayed the old log; nil when the database was opened read-only.
    var wal: WriteAheadLog?
    let memtableRows: Int
    let buildThreads: Int
    /// The database's memory budget, which places each segment in a tier before it is
    /// published (nil: no budget).
    let memoryBudget: MemoryBudget?
    /// Whether segments opened later (for reads of past versions) verify their checksums.
    let verifyChecksums: Bool
    /// On object storage, the WAL's bytes as last listed, and when (`info` lists at most once a
    /// minute; a listing is a store request, and `/metrics` asks for every open collection).
    let listedWALBytes = Locked<(bytes: Int, at: ContinuousClock.Instant)?>(nil)

    // State guarded by `state` (the extensions in other files read and write it under the lock).
    let state = NSCondition()
    var configValue: CollectionConfig
    var active: MemTable
    var frozen: [MemTable] = []
    var segments: [Segment] = []
    var idMap = IDMap()
    var memtablesByID: [UInt64: MemTable] = [:]
    var segmentsByID: [UInt64: Segment] = [:]
    var visibleSeq: UInt64 = 0
    var flushedSeq: UInt64 = 0
    var nextSegmentID: UInt64 = 1
    var nextMemtableID: UInt64 = 1
    var closed = false
    /// The last background failure, until a retry succeeds; and how many retries in a row failed.
    var backgroundError: TidepoolError?
    var backgroundRetries = 0
    /// An indexer task is queued or running.
    var indexerScheduled = false
    /// On object storage: WAL objects (one per group commit) written since the active memtable
    /// started. A writer that takes over replays every unflushed one, so there are never many.
    var logObjectsSinceFreeze = 0
    /// `requestCompaction` asked for a merge into one segment that has not run yet.
    var compactionRequested = false
    /// Segment files replaced by compactions, not yet deleted (object storage).
    var retired: [Manifest.RetiredFile] = []
    /// The committed manifest's deleted-rows files, by segment id, with how many rows each holds
    /// (`Collection+DeletedRows.swift`).
    var deletedRowFiles: [UInt64: (file: String, rows: Int)] = [:]
    /// The committed version, and when it was committed (`Collection+Versions.swift`).
    var versionNumber: UInt64 = 0
    var versionTime: Double = 0
    /// Named versions retention keeps (`Collection+Snapshots.swift`).
    var snapshotPins: [CollectionSnapshot] = []
    /// The kept versions' records, read on first need and kept up to date by each commit.
    var versionRecords: [UInt64: VersionRecord]?
    /// Opened past versions for reads `asOf` them, most recently used last.
    var versionViews: [VersionView] = []
    /// How long versions are kept.
    let retention: VersionRetention
    /// Serializes reading the version records with writing one.
    let versionsLock = NSLock()

    /// Attribute types; guarded by `schemaLock` (taken after `state` when both are needed).
    let schemaLock = NSLock()
    var schemaValue: AttributeSchema
    var schema: AttributeSchema { schemaLock.withLock { schemaValue } }

    /// Flushes and compactions run here, one at a time.
    let background: DispatchQueue
    /// Indexes the active memtable's new rows into its graph, one batch at a time.
    let indexer: DispatchQueue
    /// Rows the indexer inserts before publishing them (and before looking for a newer memtable).
    static let indexBatch = 1_024
    /// Below this many indexed rows a memtable is scanned exactly: the walk would not save enough.
    static let memtableGraphMinRows = 2_048
    /// Frozen memtables allowed to await flushing before writers wait (bounds memory at about
    /// `(maxFrozen + 1) × memtableBytes`); graph builds are slower than ingest, so allow a few.
    static let maxFrozen = 4
    /// On object storage, the active memtable is frozen and flushed once this many WAL objects
    /// hold its rows, however few: replaying them is what a takeover waits for (256 objects,
    /// fetched 32 at a time, cost about eight store round trips).
    static let maxUnflushedLogObjects = 256

    /// Opens a collection the manifest lists, recovering it (`Collection+Recovery`).
    init(catalog: any CollectionCatalog, entry: Manifest.CollectionEntry, storage: any StorageBackend, options: DatabaseOptions) throws {
        self.catalog = catalog
        name = entry.name
        dimension = entry.dimension
        metric = entry.metric
        configValue = entry.config
        self.storage = storage
        folder = "collections/" + entry.name
        logger = options.logger
        distance = DistanceFunction(metric: entry.metric, dimension: entry.dimension)
        memtableRows = MemTable.rows(forBytes: entry.config.memtableBytes, dimension: entry.dimension)
        buildThreads = options.buildThreads
        memoryBudget = options.budgetLedger
        background = DispatchQueue(label: "tidepool.background.\(entry.name)")
        indexer = DispatchQueue(label: "tidepool.indexer.\(entry.name)", qos: .utility)
        flushedSeq = entry.flushedSeq
        nextSegmentID = entry.nextSegmentID
        retired = entry.retired ?? []
        versionNumber = entry.version ?? 0
        versionTime = entry.versionTime ?? 0
        snapshotPins = entry.snapshots ?? []
        retention = options.versionRetention
        verifyChecksums = options.verifyChecksumsOnOpen
        schemaValue = AttributeSchema(types: entry.schema ?? entry.config.attributeTypes ?? [:])
        active = Collection.makeMemTable(
            id: memtableIDBit | 0, capacity: memtableRows, dimension: entry.dimension,
            metric: entry.metric, config: entry.config)
        memtablesByID[active.containerID] = active
        try recover(entry, options: options)
    }

    /// Changes the collection's index settings: HNSW parameters, the row count from which
    /// segments get a graph, and quantization. The new settings are persisted at once (atomically,
    /// with the manifest); segments built under other settings are rebuilt by a background
    /// compaction, which a crash can interrupt safely: the next open resumes it. Searches keep
    /// running on the old segments meanwhile. Text, attribute and memtable settings cannot change.
    public func updateIndexSettings(_ change: (inout CollectionConfig) -> Void) throws {
        _ = try writableLog("change its settings")
        var err: Error?
        // On `background`, which also runs flushes and compactions: concurrent updates apply one
        // after the other, each to the settings the previous one left.
        background.sync {
            let old = config
            var new = old
            change(&new)
            do {
                try new.validate(dimension: dimension)
                guard new.text == old.text, new.attributeTypes == old.attributeTypes, new.memtableBytes == old.memtableBytes else {
                    throw TidepoolError.invalidArgument(
                        "collection '\(name)': only index settings (hnsw, minRowsForGraph, maxSegments, quantization) can change")
                }
                let (segs, cutoff) = state.withLock { () -> ([Segment], UInt64) in
                    configValue = new
                    return (segments, flushedSeq)
                }
                try commitVersion(try entryWritingDeletedRows(segments: segs, flushedSeq: cutoff))
            } catch {
                err = error
                state.withLock { configValue = old }
            }
        }
        if let err { throw err }
        if segmentsOutOfDate() { scheduleFlush() }
    }

    /// The catalog that records this collection, or `closed` once its database was released.
    func owner() throws -> any CollectionCatalog {
        guard let catalog else { throw TidepoolError.closed("collection '\(name)': its database was released") }
        return catalog
    }

    /// A consistent view for one read: everything applied up to `visibleSeq`.
    func snapshot() -> Snapshot {
        state.withLock {
            let segs = segments.map { SnapshotContainer.segment($0) }
            let mems = (frozen + [active]).map { m in
                SnapshotContainer.memtable(m, rows: m.count, indexed: min(m.indexedCount, m.count))
            }
            return Snapshot(visibleSeq: visibleSeq, containers: segs + mems)
        }
    }

    /// Whether the collection works fully, or serves reads while a background flush or the log
    /// fails (a full disk, an I/O error); both are retried until they work again.
    public var health: CollectionHealth {
        if let e = state.withLock({ backgroundError }) {
            return .degraded("background flush or compaction failed, retrying: \(e)")
        }
        if let p = wal?.problem { return .degraded(p) }
        return .ok
    }

    /// The number of live documents.
    public var count: Int { state.withLock { idMap.count } }

    /// Returns the documents that exist among `ids`, in the order asked (missing ids are skipped).
    public func get(ids: [DocumentID]) throws -> [Document] {
        var found: [(DocumentID, SnapshotContainer, Int)] = []
        state.withLock {
            for id in ids {
                guard let ref = idMap[id] else { continue }
                if ref.container & memtableIDBit != 0 {
                    if let m = memtablesByID[ref.container] { found.append((id, .memtable(m, rows: m.count, indexed: 0), Int(ref.row))) }
                } else if let s = segmentsByID[ref.container] {
                    found.append((id, .segment(s), Int(ref.row)))
                }
            }
        }
        let schema = self.schema
        return try found.map { id, container, row in
            Document(id: id, vector: try container.vector(row), attributes: schema.normalized(try container.attributes(row)))
        }
    }

    /// Finishes background work and closes the log. `abandoningBackgroundWork` (the collection is
    /// being dropped): memtables are not flushed and their indexing stops, so dropping a
    /// collection with a large backlog does not wait for graphs nobody will read.
    func close(abandoningBackgroundWork: Bool = false) throws {
        if abandoningBackgroundWork {
            state.withLock {
                closed = true
                active.abandon()
                for m in frozen { m.abandon() }
            }
            state.broadcast()
        }
        background.sync {}
        state.withLock { closed = true }
        state.broadcast()
        indexer.sync {}
        try wal?.close()
    }

    /// For the `batched` sync policy: fsyncs the log if anything was written since the last sync.
    func syncWAL() { wal?.syncIfDirty() }

    /// The log writes go to; `readOnly` when the database was opened read-only.
    func writableLog(_ what: String) throws -> WriteAheadLog {
        guard let wal else { throw TidepoolError.readOnly("collection '\(name)' was opened read-only: cannot \(what)") }
        return wal
    }
}
