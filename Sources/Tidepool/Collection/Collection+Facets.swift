import Foundation

/// One value of an attribute and how many matching documents hold it.
public struct FacetCount: Sendable, Equatable {
    public var value: AttributeValue
    public var count: Int

    public init(value: AttributeValue, count: Int) {
        self.value = value
        self.count = count
    }
}

extension Collection {
    /// The `limit` most frequent values of `attribute` among the live documents `filter` admits
    /// (all of them when nil), most frequent first, ties in value order. A dotted path reaches an
    /// object's member; an array counts each of its distinct elements once per document; documents
    /// without the attribute (or with null) are not counted. With `asOf`, in that kept version.
    public func facets(
        _ attribute: String, filter: Filter? = nil, limit: Int = 10, deadline: Deadline? = nil, asOf: VersionSelector? = nil
    ) throws -> [FacetCount] {
        guard (1...10_000).contains(limit) else { throw TidepoolError.invalidArgument("facet limit must be in 1...10000, got \(limit)") }
        let schema = self.schema
        guard let type = schema.types[attribute] else {
            let known = schema.types.keys.sorted().joined(separator: ", ")
            throw TidepoolError.invalidArgument(
                "collection '\(name)': no attribute '\(attribute)' to count values of (known: \(known.isEmpty ? "none" : known))")
        }
        guard type != .object else {
            throw TidepoolError.invalidArgument(
                "collection '\(name)': '\(attribute)' is an object; count the values of a member ('\(attribute).member')")
        }
        let f = try filter?.validated(against: schema, collection: name)
        let snap = try readSnapshot(asOf: asOf)
        let key = Array(attribute.utf8)
        var counts: [AttributeValue: Int] = [:]
        for (n, row) in try snap.liveRows(matching: f, deadline: deadline).enumerated() {
            if n & 4095 == 4095 { try deadline.check("counting attribute values") }
            guard let raw = try snap.attribute(row, key: key, path: attribute) else { continue }
            // Integers of an attribute widened to float count as the floats they are.
            let value = (type == .float || type == .floatArray) ? raw.widened : raw
            switch value {
            case .null: continue
            case .stringArray(let a): for s in Set(a) { counts[.string(s), default: 0] += 1 }
            case .intArray(let a): for x in Set(a) { counts[.int(x), default: 0] += 1 }
            case .floatArray(let a): for x in Set(a) { counts[.float(x), default: 0] += 1 }
            default: counts[value, default: 0] += 1
            }
        }
        let sorted = counts.sorted { a, b in a.value != b.value ? a.value > b.value : Collection.facetOrder(a.key, b.key) }
        return sorted.prefix(limit).map { FacetCount(value: $0.key, count: $0.value) }
    }

    /// Value order for ties: numbers as numbers, strings by code point, false before true.
    static func facetOrder(_ a: AttributeValue, _ b: AttributeValue) -> Bool {
        if let c = Filter.compare(a, b) { return c < 0 }
        if case .bool(let x) = a, case .bool(let y) = b { return !x && y }
        return "\(a)" < "\(b)"
    }
}

extension Snapshot {
    /// One attribute of a row (`path` may reach into objects), decoding only that attribute where it can.
    func attribute(_ row: RowKey, key: [UInt8], path: String) throws -> AttributeValue? {
        switch containers[row.container] {
        case .segment(let s): return try s.attribute(Int(row.row), key: key)
        case .memtable(let m, _, _): return Filter.value(path, m.attributes[Int(row.row)])
        }
    }
}
