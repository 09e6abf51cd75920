/// A document's identifier: users bring unsigned 64-bit integers or strings.
public enum DocumentID: Hashable, Sendable, CustomStringConvertible, Codable {
    case uint(UInt64)
    case string(String)

    public var description: String {
        switch self {
        case .uint(let v): return String(v)
        case .string(let s): return s
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(UInt64.self) { self = .uint(v) } else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .uint(let v): try c.encode(v)
        case .string(let s): try c.encode(s)
        }
    }
}

extension DocumentID: Comparable {
    /// Integers first, in numeric order, then strings in code point order: the order of `scan`.
    public static func < (a: DocumentID, b: DocumentID) -> Bool {
        switch (a, b) {
        case (.uint(let x), .uint(let y)): return x < y
        case (.uint, .string): return true
        case (.string, .uint): return false
        case (.string(let x), .string(let y)): return utf8Less(x, y)
        }
    }
}

extension DocumentID: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: UInt64) { self = .uint(value) }
    public init(stringLiteral value: String) { self = .string(value) }
}
