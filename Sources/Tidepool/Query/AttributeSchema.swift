/// The type of an attribute, fixed per collection by its first non-null, non-empty value (or
/// declared), and widened from int to float (and int array to float array) when a float arrives.
public enum AttributeType: String, Sendable, Codable, CaseIterable {
    case string, int, float, bool, stringArray, intArray, floatArray
    /// An object: each member's type is recorded under its dotted path (`meta.page`).
    case object

    /// The type of a value; `nil` for `.null` and for an empty array, which any attribute (of an
    /// array type, for the array) may hold.
    public init?(of value: AttributeValue) {
        switch value {
        case .string: self = .string
        case .int: self = .int
        case .float: self = .float
        case .bool: self = .bool
        case .stringArray(let a): if a.isEmpty { return nil } else { self = .stringArray }
        case .intArray(let a): if a.isEmpty { return nil } else { self = .intArray }
        case .floatArray(let a): if a.isEmpty { return nil } else { self = .floatArray }
        case .object: self = .object
        case .null: return nil
        }
    }

    var isArray: Bool { self == .stringArray || self == .intArray || self == .floatArray }
}

/// Attribute name → type, inferred on write. A value of another type is refused, except
/// numbers: an integer written to a float attribute is stored as a float, and a float written to
/// an integer attribute makes it a float attribute (the integers stored before read as floats);
/// integer and float arrays likewise. An empty array fits any array attribute.
struct AttributeSchema: Sendable, Equatable, Codable {
    var types: [String: AttributeType] = [:]

    /// Checks `attrs` against the schema (plus `pending` additions and widenings of the same
    /// batch), converting values to their attribute's type. Returns the checked attributes.
    func check(
        _ attrs: [String: AttributeValue], pending: inout [String: AttributeType], collection: String,
        id: DocumentID
    ) throws -> [String: AttributeValue] {
        var out = attrs
        for (key, value) in attrs {
            out[key] = try check(key, value, pending: &pending, collection: collection, id: id)
        }
        return out
    }

    /// One value at `key` (a dotted path inside objects), checked and converted.
    private func check(
        _ key: String, _ value: AttributeValue, pending: inout [String: AttributeType], collection: String, id: DocumentID
    ) throws -> AttributeValue {
        let known = pending[key] ?? types[key]
        if case .object(let members) = value {
            guard known == nil || known == .object else {
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': attribute '\(key)' of document \(id) is an object, but the attribute holds \(known?.rawValue ?? "")"
                )
            }
            if known == nil { pending[key] = .object }
            var out = members
            for (k, v) in members { out[k] = try check(key + "." + k, v, pending: &pending, collection: collection, id: id) }
            return .object(out)
        }
        var out = value
        guard let t = AttributeType(of: value) else {
            // null, or an empty array: typed by the attribute when it is an array one.
            if let k = known, value != .null {
                guard k.isArray else {
                    throw TidepoolError.invalidArgument(
                        "collection '\(collection)': attribute '\(key)' of document \(id) is an array, but the attribute holds \(k.rawValue)"
                    )
                }
                out = AttributeSchema.emptyArray(k)
            }
            return out
        }
        switch (known, t) {
        case (nil, _): pending[key] = t
        case (let k?, let t) where k == t: break
        case (.float?, .int), (.floatArray?, .intArray): out = value.widened
        case (.int?, .float): pending[key] = .float
        case (.intArray?, .floatArray): pending[key] = .floatArray
        case (let k?, let t):
            throw TidepoolError.invalidArgument(
                "collection '\(collection)': attribute '\(key)' of document \(id) is \(t.rawValue), but the attribute holds \(k.rawValue)"
            )
        }
        return out
    }

    /// Records the type of a value read back (a replayed log), widening as writing does.
    mutating func observe(_ key: String, _ value: AttributeValue) {
        if case .object(let members) = value {
            if types[key] == nil { types[key] = .object }
            for (k, v) in members { observe(key + "." + k, v) }
            return
        }
        guard let t = AttributeType(of: value) else { return }
        switch (types[key], t) {
        case (nil, _), (.int?, .float), (.intArray?, .floatArray): types[key] = t
        default: break
        }
    }

    /// Attributes as their attribute's type says: integers stored before an attribute became a
    /// float one read as floats. Returns `attrs` itself when nothing needs converting.
    func normalized(_ attrs: [String: AttributeValue], prefix: String = "") -> [String: AttributeValue] {
        var out = attrs
        for (k, v) in attrs {
            switch (v, types[prefix + k]) {
            case (.int, .float?), (.intArray, .floatArray?): out[k] = v.widened
            case (.object(let members), _): out[k] = .object(normalized(members, prefix: prefix + k + "."))
            default: break
            }
        }
        return out
    }

    private static func emptyArray(_ t: AttributeType) -> AttributeValue {
        switch t {
        case .intArray: return .intArray([])
        case .floatArray: return .floatArray([])
        default: return .stringArray([])
        }
    }
}

extension AttributeValue {
    /// An integer (or integer array) as the float (array) it equals; anything else as it is.
    var widened: AttributeValue {
        switch self {
        case .int(let i): return .float(Double(i))
        case .intArray(let a): return .floatArray(a.map(Double.init))
        default: return self
        }
    }
}
