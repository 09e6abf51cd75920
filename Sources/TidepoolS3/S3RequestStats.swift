import Synchronization

/// Counts of object-store requests by kind, with their total and worst latency: what `/metrics`
/// and the benchmarks report, and how tests check that an idle collection costs nothing.
public final class S3RequestStats: Sendable {
    public struct Entry: Sendable, Equatable {
        public var count = 0
        public var totalSeconds = 0.0
        public var maxSeconds = 0.0
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    func record(_ operation: String, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        entries.withLock { e in
            var entry = e[operation, default: Entry()]
            entry.count += 1
            entry.totalSeconds += seconds
            entry.maxSeconds = max(entry.maxSeconds, seconds)
            e[operation] = entry
        }
    }

    /// Requests so far, by operation (`GET`, `GET range`, `HEAD`, `PUT`, `PUT if absent`,
    /// `PUT if unchanged`, `DELETE`, `ListObjectsV2`, multipart steps).
    public var snapshot: [String: Entry] { entries.withLock { $0 } }

    /// How many requests of the given operations were made.
    public func count(_ operations: String...) -> Int {
        let s = snapshot
        return operations.reduce(0) { $0 + (s[$1]?.count ?? 0) }
    }
}
