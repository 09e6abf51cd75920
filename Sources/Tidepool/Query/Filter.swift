import Foundation

/// A condition on attributes, usable as a Swift value or parsed from JSON.
///
/// Missing and `null` attributes are the same thing: they match `eq(field, .null)`, `ne` and `notIn`
/// of any other value, and `not(exists(field))`, and nothing else. On an array attribute (of
/// strings, integers or floats), `eq`/`in` match when any element matches; `contains` tests one
/// element of a string array. Integers and floats compare as numbers.
/// String comparisons (`lt`… and `prefix`) are by Unicode code points, so ISO dates like
/// `"2024-01"` order as dates.
public indirect enum Filter: Sendable, Hashable {
    case and([Filter])
    case or([Filter])
    case not(Filter)
    case eq(String, AttributeValue)
    case ne(String, AttributeValue)
    case `in`(String, [AttributeValue])
    case notIn(String, [AttributeValue])
    case lt(String, AttributeValue)
    case lte(String, AttributeValue)
    case gt(String, AttributeValue)
    case gte(String, AttributeValue)
    case exists(String)
    case contains(String, String)
    case prefix(String, String)

    // MARK: Reference semantics

    /// Whether a document with these attributes matches. This is the definition the indexes
    /// must agree with; the memtable is filtered with it directly.
    public func matches(_ attrs: [String: AttributeValue]) -> Bool {
        switch self {
        case .and(let fs): return fs.allSatisfy { $0.matches(attrs) }
        case .or(let fs): return fs.contains { $0.matches(attrs) }
        case .not(let f): return !f.matches(attrs)
        case .eq(let k, let v): return Filter.equal(Filter.value(k, attrs) ?? .null, v)
        case .ne(let k, let v): return !Filter.equal(Filter.value(k, attrs) ?? .null, v)
        case .in(let k, let vs): return vs.contains { Filter.equal(Filter.value(k, attrs) ?? .null, $0) }
        case .notIn(let k, let vs): return !vs.contains { Filter.equal(Filter.value(k, attrs) ?? .null, $0) }
        case .lt(let k, let v): return Filter.compare(Filter.value(k, attrs), v).map { $0 < 0 } ?? false
        case .lte(let k, let v): return Filter.compare(Filter.value(k, attrs), v).map { $0 <= 0 } ?? false
        case .gt(let k, let v): return Filter.compare(Filter.value(k, attrs), v).map { $0 > 0 } ?? false
        case .gte(let k, let v): return Filter.compare(Filter.value(k, attrs), v).map { $0 >= 0 } ?? false
        case .exists(let k): if let v = Filter.value(k, attrs), v != .null { return true } else { return false }
        case .contains(let k, let s):
            if case .stringArray(let a)? = Filter.value(k, attrs) { return a.contains(s) } else { return false }
        case .prefix(let k, let p):
            if case .string(let s)? = Filter.value(k, attrs) { return Filter.codePointsHavePrefix(s, p) } else { return false }
        }
    }

    /// The value a filter's field names: an attribute, or an object's member by dotted path.
    @inline(__always) static func value(_ k: String, _ attrs: [String: AttributeValue]) -> AttributeValue? {
        attrs[k] ?? (k.utf8.contains(UInt8(ascii: ".")) ? AttributeValue.lookup(k, in: attrs) : nil)
    }

    static func equal(_ stored: AttributeValue, _ v: AttributeValue) -> Bool {
        switch (stored, v) {
        case (.stringArray(let a), .string(let s)): return a.contains(s)
        case (.float(let a), .int(let b)): return a == Double(b)
        case (.int(let a), .float(let b)): return Double(a) == b
        case (.intArray(let a), .int(let b)): return a.contains(b)
        case (.intArray(let a), .float(let b)): return a.contains { Double($0) == b }
        case (.floatArray(let a), .float(let b)): return a.contains(b)
        case (.floatArray(let a), .int(let b)): return a.contains(Double(b))
        default: return stored == v
        }
    }

    /// -1, 0, 1; nil when not comparable (missing, null, or another type).
    static func compare(_ stored: AttributeValue?, _ v: AttributeValue) -> Int? {
        switch (stored, v) {
        case (.int(let a)?, .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.float(let a)?, .float(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.float(let a)?, .int(let b)): let d = Double(b); return a < d ? -1 : (a == d ? 0 : 1)
        case (.int(let a)?, .float(let b)): let d = Double(a); return d < b ? -1 : (d == b ? 0 : 1)
        case (.string(let a)?, .string(let b)): return codePointCompare(a, b)
        default: return nil
        }
    }

    /// Code point order (UTF-8 byte order), the order the string columns sort in.
    static func codePointCompare(_ a: String, _ b: String) -> Int {
        utf8Less(a, b) ? -1 : (a.utf8.elementsEqual(b.utf8) ? 0 : 1)
    }

    static func codePointsHavePrefix(_ s: String, _ p: String) -> Bool { s.utf8.starts(with: p.utf8) }

    /// The attribute names the filter mentions.
    var attributeNames: Set<String> {
        switch self {
        case .and(let fs), .or(let fs): return fs.reduce(into: Set<String>()) { $0.formUnion($1.attributeNames) }
        case .not(let f): return f.attributeNames
        case .eq(let k, _), .ne(let k, _), .in(let k, _), .notIn(let k, _), .lt(let k, _), .lte(let k, _),
            .gt(let k, _), .gte(let k, _), .exists(let k), .contains(let k, _), .prefix(let k, _):
            return [k]
        }
    }

    // MARK: Validation

    /// Bounds on every filter: it is input, and its size, nesting and lists bound the work it asks for.
    public static let maxDepth = 32
    public static let maxNodes = 4096
    /// Values in all `in` and `notIn` lists of one filter, together.
    public static let maxListValues = 100_000

    /// Checks the filter against `maxDepth`, `maxNodes` and `maxListValues`.
    func checkLimits(collection: String) throws {
        var nodes = 0, values = 0
        func walk(_ f: Filter, _ depth: Int) throws {
            nodes += 1
            guard depth <= Filter.maxDepth else {
                throw TidepoolError.invalidArgument("collection '\(collection)': filter nested deeper than \(Filter.maxDepth)")
            }
            guard nodes <= Filter.maxNodes else {
                throw TidepoolError.invalidArgument("collection '\(collection)': filter has more than \(Filter.maxNodes) conditions")
            }
            switch f {
            case .and(let fs), .or(let fs): for c in fs { try walk(c, depth + 1) }
            case .not(let c): try walk(c, depth + 1)
            case .in(_, let vs), .notIn(_, let vs):
                values += vs.count
                guard values <= Filter.maxListValues else {
                    throw TidepoolError.invalidArgument(
                        "collection '\(collection)': filter lists hold more than \(Filter.maxListValues) values")
                }
            default: break
            }
        }
        try walk(self, 1)
    }

    /// Checks the filter's size and its names and types against a collection's schema; unknown
    /// attributes and type mismatches are errors, not silent empty results. Returns the filter
    /// with integer operands on float attributes converted.
    func validated(against schema: AttributeSchema, collection: String) throws -> Filter {
        try checkLimits(collection: collection)
        return try validatedNode(against: schema, collection: collection)
    }

    private func validatedNode(against schema: AttributeSchema, collection: String) throws -> Filter {
        func type(_ k: String) throws -> AttributeType {
            guard let t = schema.types[k] else {
                let known = schema.types.keys.sorted().joined(separator: ", ")
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': filter names unknown attribute '\(k)' (known: \(known.isEmpty ? "none" : known))")
            }
            return t
        }
        func operand(_ k: String, _ v: AttributeValue, allowNull: Bool, ordered: Bool = false) throws -> AttributeValue {
            let t = try type(k)
            if v == .null {
                if allowNull { return v }
                throw TidepoolError.invalidArgument("collection '\(collection)': filter compares '\(k)' with null")
            }
            guard let vt = AttributeType(of: v), !vt.isArray, vt != .object else {
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': filter on '\(k)' compares with an array or object; give one value")
            }
            if t == .object {
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': '\(k)' is an object; filter on its members by dotted path ('\(k).member')")
            }
            if ordered && t.isArray {
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': '\(k)' is an array; an ordering comparison needs one value")
            }
            switch (t, vt) {
            case (.float, .int), (.floatArray, .int): return v.widened
            case (.int, .float), (.intArray, .int), (.intArray, .float), (.floatArray, .float), (.stringArray, .string): return v
            case _ where t == vt && (!ordered || t == .int || t == .float || t == .string): return v
            default: break
            }
            throw TidepoolError.invalidArgument(
                "collection '\(collection)': filter on '\(k)' (\(t.rawValue)) uses a \(vt.rawValue) value"
                    + (ordered ? " in an ordering comparison" : ""))
        }
        switch self {
        case .and(let fs): return .and(try fs.map { try $0.validatedNode(against: schema, collection: collection) })
        case .or(let fs): return .or(try fs.map { try $0.validatedNode(against: schema, collection: collection) })
        case .not(let f): return .not(try f.validatedNode(against: schema, collection: collection))
        case .eq(let k, let v): return .eq(k, try operand(k, v, allowNull: true))
        case .ne(let k, let v): return .ne(k, try operand(k, v, allowNull: true))
        case .in(let k, let vs): return .in(k, try vs.map { try operand(k, $0, allowNull: true) })
        case .notIn(let k, let vs): return .notIn(k, try vs.map { try operand(k, $0, allowNull: true) })
        case .lt(let k, let v): return .lt(k, try operand(k, v, allowNull: false, ordered: true))
        case .lte(let k, let v): return .lte(k, try operand(k, v, allowNull: false, ordered: true))
        case .gt(let k, let v): return .gt(k, try operand(k, v, allowNull: false, ordered: true))
        case .gte(let k, let v): return .gte(k, try operand(k, v, allowNull: false, ordered: true))
        case .exists(let k): _ = try type(k); return self
        case .contains(let k, _):
            guard try type(k) == .stringArray else {
                throw TidepoolError.invalidArgument("collection '\(collection)': 'contains' needs a string-array attribute, '\(k)' is not")
            }
            return self
        case .prefix(let k, _):
            guard try type(k) == .string else {
                throw TidepoolError.invalidArgument("collection '\(collection)': 'prefix' needs a string attribute, '\(k)' is not")
            }
            return self
        }
    }
}
