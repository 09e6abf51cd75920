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
    /// Opens without changing anything: no log file is started or cut, nothing is deleted, no
    /// background work runs, every write is refused (`TidepoolError.readOnly`). Other read-only
    /// opens may run at the same time; a writer may not. A path that holds no database is an error.
    public var readOnly: Bool
    /// Whether opening a path that holds no database creates an empty one there (never with `readOnly`).
    public var createIfMissing: Bool
    public var logger: Logger
    /// The memory, in bytes, the database's searches should keep to (nil: no budget). Segments
    /// that do not fit are searched from disk (the cold tier: an IVF's codes pinned in memory,
    /// f32 rows read only to re-rank), and large segments are built as IVF-PQ so that they can
    /// be; see docs/COLD_TIER.md. A planning figure, not a hard limit: the process's own memory
    /// and the memtables are not counted.
    public var memoryBudget: Int?
    /// How long each collection's past versions are kept for reads `asOf` them, restores and
    /// branches (default: the newest 10, and all from the last 2 hours). Their replaced segment
    /// files stay on disk meanwhile; `.currentOnly` deletes them as soon as nothing reads them.
    public var versionRetention: VersionRetention
    /// The budget's ledger, one per open database (set by `Database`).
    var budgetLedger: MemoryBudget?

    public init(
        syncPolicy: SyncPolicy = .always, syncInterval: Double = 0.05, verifyChecksumsOnOpen: Bool = true,
        buildThreads: Int = ProcessInfo.processInfo.activeProcessorCount, readOnly: Bool = false,
        createIfMissing: Bool = true, logger: Logger = Logger(label: "tidepool"), memoryBudget: Int? = nil,
        versionRetention: VersionRetention = VersionRetention()
    ) {
        self.versionRetention = versionRetention
        self.memoryBudget = memoryBudget.map { max(0, $0) }
        self.readOnly = readOnly
        self.createIfMissing = createIfMissing && !readOnly
        self.syncPolicy = syncPolicy
        self.syncInterval = syncInterval
        self.verifyChecksumsOnOpen = verifyChecksumsOnOpen
        self.buildThreads = max(1, buildThreads)
        self.logger = logger
    }
}
