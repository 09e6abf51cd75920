import Foundation

extension Filter {
    /// Parses the JSON filter syntax (docs/FILTERS.md):
    ///
    ///     {"and": [F, …]}   {"or": [F, …]}   {"not": F}
    ///     {"FIELD": VALUE}                       equality
    ///     {"FIELD": {"OP": VALUE}}               OP: eq ne in notIn lt lte gt gte exists contains prefix
    ///
    /// An object with several keys is the conjunction of them.
    public init(json: Data) throws {
        let value: JSONValue
        do { value = try JSONParser.parse([UInt8](json)) } catch {
            throw TidepoolError.invalidArgument("filter is not valid JSON: \(error)")
        }
        self = try Filter.parse(value, path: "filter")
    }

    /// Parses the JSON filter syntax from a parsed value; `path` names it in errors. Nesting is
    /// refused past `maxDepth` as it is parsed (paths and work grow with depth).
    public init(json value: JSONValue, path: String) throws { self = try Filter.parse(value, path: path) }

    /// Parses the JSON filter syntax from a string.
    public init(json: String) throws { try self.init(json: Data(json.utf8)) }

    static func parse(_ json: JSONValue, path: String, depth: Int = 1) throws -> Filter {
        guard depth <= maxDepth else { throw TidepoolError.invalidArgument("\(path): filter nested deeper than \(maxDepth)") }
        guard case .object(let obj) = json, !obj.isEmpty else {
            throw TidepoolError.invalidArgument("\(path): expected a non-empty JSON object")
        }
        var parts: [Filter] = []
        for key in obj.keys.sorted() {
            let value = obj[key]!
            let here = "\(path).\(key)"
            switch key {
            case "and", "or":
                guard case .array(let list) = value, !list.isEmpty else {
                    throw TidepoolError.invalidArgument("\(here): expected a non-empty array")
                }
                let fs = try list.enumerated().map { try parse($0.element, path: "\(here)[\($0.offset)]", depth: depth + 1) }
                parts.append(key == "and" ? .and(fs) : .or(fs))
            case "not":
                parts.append(.not(try parse(value, path: here, depth: depth + 1)))
            default:
                if case .object(let ops) = value {
                    guard !ops.isEmpty else { throw TidepoolError.invalidArgument("\(here): expected an operator") }
                    for op in ops.keys.sorted() { parts.append(try parseOp(field: key, op: op, ops[op]!, path: "\(here).\(op)")) }
                } else {
                    parts.append(.eq(key, try AttributeValue(json: value, path: here)))
                }
            }
        }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    static func parseOp(field: String, op: String, _ v: JSONValue, path: String) throws -> Filter {
        switch op {
        case "eq": return .eq(field, try AttributeValue(json: v, path: path))
        case "ne": return .ne(field, try AttributeValue(json: v, path: path))
        case "in", "notIn", "not_in":
            guard case .array(let list) = v else { throw TidepoolError.invalidArgument("\(path): expected an array") }
            let vs = try list.map { try AttributeValue(json: $0, path: path) }
            return op == "in" ? .in(field, vs) : .notIn(field, vs)
        case "lt": return .lt(field, try AttributeValue(json: v, path: path))
        case "lte": return .lte(field, try AttributeValue(json: v, path: path))
        case "gt": return .gt(field, try AttributeValue(json: v, path: path))
        case "gte": return .gte(field, try AttributeValue(json: v, path: path))
        case "exists":
            guard case .bool(let b) = v else { throw TidepoolError.invalidArgument("\(path): expected true or false") }
            return b ? .exists(field) : .not(.exists(field))
        case "contains", "prefix":
            guard case .string(let s) = v else { throw TidepoolError.invalidArgument("\(path): expected a string") }
            return op == "contains" ? .contains(field, s) : .prefix(field, s)
        default:
            throw TidepoolError.invalidArgument("\(path): unknown operator '\(op)'")
        }
    }
}

extension AttributeValue {
    /// The attribute value a JSON value stands for: strings, integers, floats, booleans, null,
    /// arrays of strings or numbers, and objects of these (8 levels at most). `path` names the value
    /// in error messages.
    public init(json v: JSONValue, path: String) throws { try self.init(json: v, path: path, depth: 0) }

    private init(json v: JSONValue, path: String, depth: Int) throws {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        // Integer attributes are signed 64-bit; a larger operand compares as the float it is.
        case .uint(let u): self = .float(Double(u))
        case .double(let d): self = .float(d)
        case .string(let s): self = .string(s)
        case .array(let a):
            // Strings, or numbers (integers unless one is not: then floats); an empty array fits any array attribute.
            if a.allSatisfy({ if case .string = $0 { true } else { false } }) {
                self = .stringArray(a.map { if case .string(let s) = $0 { s } else { "" } })
            } else if a.allSatisfy({ if case .int = $0 { true } else { false } }) {
                self = .intArray(a.map { if case .int(let i) = $0 { i } else { 0 } })
            } else {
                self = .floatArray(
                    try a.map {
                        switch $0 {
                        case .int(let i): return Double(i)
                        case .uint(let u): return Double(u)
                        case .double(let d): return d
                        default: throw TidepoolError.invalidArgument("\(path): arrays hold strings or numbers, not a mix or other values")
                        }
                    })
            }
        case .object(let o):
            guard depth < RecordCodec.maxObjectDepth else {
                throw TidepoolError.invalidArgument("\(path): objects nested deeper than \(RecordCodec.maxObjectDepth) levels")
            }
            var members: [String: AttributeValue] = [:]
            for (k, x) in o { members[k] = try AttributeValue(json: x, path: "\(path).\(k)", depth: depth + 1) }
            self = .object(members)
        }
    }
}
