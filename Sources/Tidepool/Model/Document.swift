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
public struct Document: Sendable, Equatable {
    public var id: DocumentID
    public var vector: [Float]
    public var attributes: [String: AttributeValue]

    public init(id: DocumentID, vector: [Float], attributes: [String: AttributeValue] = [:]) {
        self.id = id
        self.vector = vector
        self.attributes = attributes
    }
}
