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

    public init(
        syncPolicy: SyncPolicy = .always, syncInterval: Double = 0.05, verifyChecksumsOnOpen: Bool = true,
        buildThreads: Int = ProcessInfo.processInfo.activeProcessorCount, readOnly: Bool = false,
        createIfMissing: Bool = true, logger: Logger = Logger(label: "tidepool")
    ) {
        self.readOnly = readOnly
        self.createIfMissing = createIfMissing && !readOnly
        self.syncPolicy = syncPolicy
        self.syncInterval = syncInterval
        self.verifyChecksumsOnOpen = verifyChecksumsOnOpen
        self.buildThreads = max(1, buildThreads)
        self.logger = logger
    }
}
