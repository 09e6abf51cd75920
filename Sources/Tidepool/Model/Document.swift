/// A typed attribute value stored with a document.
public enum AttributeValue: Hashable, Sendable, Codable {
    case string(String)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case stringArray([String])
    case intArray([Int64])
    case floatArray([Double])
    /// An object, stored whole; filters reach its members by dotted path (`"meta.page"`).
    case object([String: AttributeValue])
    case null

    /// The value at a dotted path in `attrs`: the attribute of that exact name, else a member of
    /// an object attribute (`"a.b.c"`: attribute `a`'s `b`'s `c`, or attribute `a.b`'s `c`).
    public static func lookup(_ path: String, in attrs: [String: AttributeValue]) -> AttributeValue? {
        if let v = attrs[path] { return v }
        var i = path.utf8.startIndex
        while let dot = path.utf8[i...].firstIndex(of: UInt8(ascii: ".")) {
            if case .object(let o)? = attrs[String(path[..<dot])] {
                let rest = String(path[path.index(after: dot)...])
                if let v = lookup(rest, in: o) { return v }
            }
            i = path.utf8.index(after: dot)
        }
        return nil
    }
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
