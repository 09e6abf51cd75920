/// The type of an attribute, fixed per collection by its first non-null value (or declared).
public enum AttributeType: String, Sendable, Codable, CaseIterable {
    case string, int, float, bool, stringArray

    /// The type of a value; `nil` for `.null`, which any attribute may hold.
    public init?(of value: AttributeValue) {
        switch value {
        case .string: self = .string
        case .int: self = .int
        case .float: self = .float
        case .bool: self = .bool
        case .stringArray: self = .stringArray
        case .null: return nil
        }
    }
}

/// Attribute name → type, inferred on write. A value of another type is refused
/// (an integer is accepted into a float attribute and stored as a float).
struct AttributeSchema: Sendable, Equatable, Codable {
    var types: [String: AttributeType] = [:]

    /// Checks `attrs` against the schema (plus `pending` additions of the same batch),
    /// converting integers stored into float attributes. Returns the checked attributes.
    func check(
        _ attrs: [String: AttributeValue], pending: inout [String: AttributeType], collection: String,
        id: DocumentID
    ) throws -> [String: AttributeValue] {
        var out = attrs
        for (key, value) in attrs {
            guard let t = AttributeType(of: value) else { continue }
            let known = types[key] ?? pending[key]
            switch (known, t) {
            case (nil, _): pending[key] = t
            case (let k?, let t) where k == t: break
            case (.float?, .int):
                if case .int(let i) = value { out[key] = .float(Double(i)) }
            case (let k?, let t):
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': attribute '\(key)' of document \(id) is \(t.rawValue), but the attribute holds \(k.rawValue)"
                )
            }
        }
        return out
    }
}
