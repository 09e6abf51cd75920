/// What a database on object storage has asked of its store and its cache, since it opened:
/// for `/metrics` and for checking what a workload costs (`Database.objectStorageMetrics`).
public struct ObjectStorageMetrics: Sendable, Equatable {
    /// Requests of one kind (`GET`, `GET range`, `HEAD`, `PUT if absent`, `DELETE`, `ListObjectsV2`, …).
    public struct Requests: Sendable, Equatable {
        public var count = 0
        /// Summed latency, seconds (divide by `count` for the mean).
        public var totalSeconds = 0.0
        /// The slowest one, seconds.
        public var maxSeconds = 0.0

        public init(count: Int = 0, totalSeconds: Double = 0, maxSeconds: Double = 0) {
            self.count = count
            self.totalSeconds = totalSeconds
            self.maxSeconds = maxSeconds
        }
    }

    /// Bytes of segment copies in the local cache, and the budget they are kept under.
    public var cacheBytes = 0
    public var cacheCapacity = 0
    /// Segment files found in the cache, fetched from the store, and dropped to keep the budget.
    public var cacheHits = 0
    public var cacheMisses = 0
    public var cacheEvictions = 0
    /// Store requests by kind.
    public var requests: [String: Requests] = [:]
}
