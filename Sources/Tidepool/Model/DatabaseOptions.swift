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

    public init(
        syncPolicy: SyncPolicy = .always, syncInterval: Double = 0.05, verifyChecksumsOnOpen: Bool = true,
        buildThreads: Int = ProcessInfo.processInfo.activeProcessorCount,
        logger: Logger = Logger(label: "tidepool")
    ) {
        self.syncPolicy = syncPolicy
        self.syncInterval = syncInterval
        self.verifyChecksumsOnOpen = verifyChecksumsOnOpen
        self.buildThreads = max(1, buildThreads)
        self.logger = logger
    }
}
