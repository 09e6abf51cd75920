/// How the terms of a text query must match.
public enum TextMatch: String, Sendable, Codable {
    /// Any term (BM25 ranks documents with more and rarer terms higher).
    case any
    /// Every term.
    case all
    /// Every term, consecutively and in order.
    case phrase
}

/// Options for a BM25 query.
public struct TextSearchOptions: Sendable {
    public var match: TextMatch
    public var filter: Filter?
    public var includeAttributes: Bool
    /// Give up with `TidepoolError.deadlineExceeded` once this passes (nil: no limit).
    public var deadline: Deadline?
    /// Read a kept version instead of the current state (nil: the current state, with every
    /// acknowledged write). A version holds what was flushed when it was committed.
    public var asOf: VersionSelector?

    public init(match: TextMatch = .any, filter: Filter? = nil, includeAttributes: Bool = false, deadline: Deadline? = nil) {
        self.deadline = deadline
        self.match = match
        self.filter = filter
        self.includeAttributes = includeAttributes
    }
}

/// One full-text result.
public struct TextHit: Sendable, Equatable {
    public var id: DocumentID
    /// BM25 score; larger is better.
    public var score: Double
    public var attributes: [String: AttributeValue]?
}

/// How a hybrid query merges its vector and text rankings.
public enum Fusion: Sendable, Equatable {
    /// Reciprocal rank fusion: Σ 1 / (k + rank), rank from 1.
    case reciprocalRank(k: Int = 60)
    /// `vectorWeight · v + (1 − vectorWeight) · t`, each score min-max normalized within its list.
    case weighted(vectorWeight: Double)
}

/// Options for a hybrid (vector + BM25) query.
public struct HybridOptions: Sendable {
    public var fusion: Fusion
    /// How many candidates each ranking contributes.
    public var candidates: Int
    public var ef: Int?
    /// Applied to both rankings.
    public var filter: Filter?
    public var match: TextMatch
    public var includeAttributes: Bool
    /// Give up with `TidepoolError.deadlineExceeded` once this passes (nil: no limit).
    public var deadline: Deadline?
    /// Read a kept version instead of the current state (nil: the current state, with every
    /// acknowledged write). A version holds what was flushed when it was committed.
    public var asOf: VersionSelector?

    public init(
        fusion: Fusion = .reciprocalRank(), candidates: Int = 100, ef: Int? = nil, filter: Filter? = nil,
        match: TextMatch = .any, includeAttributes: Bool = false, deadline: Deadline? = nil
    ) {
        self.deadline = deadline
        self.fusion = fusion
        self.candidates = candidates
        self.ef = ef
        self.filter = filter
        self.match = match
        self.includeAttributes = includeAttributes
    }
}

/// One hybrid result with its component scores.
public struct HybridHit: Sendable, Equatable {
    public var id: DocumentID
    /// The fused score; larger is better.
    public var score: Double
    /// 1-based rank in the vector ranking, and the distance there; nil if not among its candidates.
    public var vectorRank: Int?
    public var vectorDistance: Float?
    /// 1-based rank in the BM25 ranking, and the BM25 score; nil if not among its candidates.
    public var textRank: Int?
    public var textScore: Double?
    public var attributes: [String: AttributeValue]?
}
