/// One search result.
public struct SearchHit: Sendable, Equatable {
    public var id: DocumentID
    /// Smaller is closer: squared L2, `1 - cos`, or `-a·b` for inner product.
    public var distance: Float
    /// Present when `SearchOptions.includeAttributes` is set.
    public var attributes: [String: AttributeValue]?
    /// Present when `SearchOptions.includeVectors` is set (normalized for cosine).
    public var vector: [Float]?
}

/// What one search cost: how much of the collection it touched and how long it took.
public struct SearchCost: Sendable, Equatable, Codable {
    /// Segments and in-memory tables searched (those a filter rules out entirely are skipped).
    public var containers: Int = 0
    /// Graph walks (HNSW over a segment or over the in-memory tier).
    public var graphSearches: Int = 0
    /// Rows compared one by one in exact scans.
    public var rowsScanned: Int = 0
    /// Full-precision (f32) distances computed, in graph walks and scans.
    public var distances: Int = 0
    /// Distances estimated from compressed codes (quantized indexes).
    public var quantizedDistances: Int = 0
    /// IVF posting lists scanned.
    public var listsProbed: Int = 0
    /// Full-text postings read (text and hybrid queries).
    public var postings: Int = 0
    /// Wall time of the search inside the engine, in nanoseconds.
    public var nanoseconds: UInt64 = 0

    public init() {}

    /// Adds another search's counts and time (for a batch of queries).
    public mutating func add(_ o: SearchCost) {
        containers += o.containers; graphSearches += o.graphSearches; rowsScanned += o.rowsScanned
        distances += o.distances; quantizedDistances += o.quantizedDistances; postings += o.postings
        listsProbed += o.listsProbed
        nanoseconds += o.nanoseconds
    }
}

/// The hits of one search and what it cost.
public struct SearchResults: Sendable {
    public var hits: [SearchHit]
    public var cost: SearchCost
}

/// The hits of a batch of searches, one list per query in the order given, and what the whole
/// batch cost.
public struct BatchSearchResults: Sendable {
    public var hits: [[SearchHit]]
    public var cost: SearchCost
}
