/// A typed attribute value stored with a document.
public enum AttributeValue: Hashable, Sendable, Codable {
    case string(String)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case stringArray([String])
    case null
}

/// A document: an id, a vector and optional attributes.
///
/// A document may have no vector (`vector` empty, ``init(id:attributes:)``): it is stored,
/// read, filtered, scanned and found by full-text search like any other, and never returned
/// by a vector search (docs/FILTERS.md, "Documents without vectors").
public struct Document: Sendable, Equatable {
    public var id: DocumentID
    /// The vector, of the collection's dimension; empty for a document without one.
    public var vector: [Float]
    public var attributes: [String: AttributeValue]

    public init(id: DocumentID, vector: [Float], attributes: [String: AttributeValue] = [:]) {
        self.id = id
        self.vector = vector
        self.attributes = attributes
    }

    /// A document without a vector: found by filters, scans and text search, never by vector search.
    public init(id: DocumentID, attributes: [String: AttributeValue]) {
        self.init(id: id, vector: [], attributes: attributes)
    }

    /// Whether the document has a vector.
    public var hasVector: Bool { !vector.isEmpty }
}
