import Foundation

/// Options for one search.
public struct SearchOptions: Sendable {
    /// HNSW beam width; `nil` uses the collection's default. Raised to `k` when smaller.
    public var ef: Int?
    /// Brute force over every live vector: exact results, the ground truth of recall tests.
    public var exact: Bool
    public var includeAttributes: Bool
    public var includeVectors: Bool
    /// Candidates re-scored with full-precision vectors after a walk or a list scan over
    /// compressed codes; `nil` uses `min(ef, max(2·k, 20))` for HNSW (at least k) and `max(4·k, 40)` for IVF (RaBitQ
    /// re-scores by its error bound instead). Larger is slower and closer to the full-precision answer.
    public var rerank: Int?
    /// IVF lists scanned per segment; `nil` uses the collection's default. More is slower and
    /// closer to exact.
    public var nprobe: Int?
    /// Most threads one search may use (exact scans of large collections split across cores).
    public var maxThreads: Int
    /// Only documents matching this filter are returned: the true filtered top-k, within
    /// the index's recall, whatever the filter's selectivity.
    public var filter: Filter?
    /// Give up with `TidepoolError.deadlineExceeded` once this passes (nil: no limit).
    public var deadline: Deadline?
    /// Read a kept version instead of the current state (nil: the current state, with every
    /// acknowledged write). A version holds what was flushed when it was committed.
    public var asOf: VersionSelector?

    public init(
        ef: Int? = nil, exact: Bool = false, includeAttributes: Bool = false,
        includeVectors: Bool = false, maxThreads: Int = ProcessInfo.processInfo.activeProcessorCount,
        filter: Filter? = nil, rerank: Int? = nil, nprobe: Int? = nil, deadline: Deadline? = nil, asOf: VersionSelector? = nil
    ) {
        self.asOf = asOf
        self.deadline = deadline
        self.filter = filter
        self.nprobe = nprobe
        self.rerank = rerank
        self.ef = ef
        self.exact = exact
        self.includeAttributes = includeAttributes
        self.includeVectors = includeVectors
        self.maxThreads = max(1, maxThreads)
    }
}
