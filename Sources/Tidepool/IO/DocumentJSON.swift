import Foundation

/// Documents and their parts as JSON: what the HTTP API takes, what `tidepool import` reads from
/// JSON Lines and what `tidepool export` writes. One reading for all, so a file exported by one
/// imports into another, and a body the server takes is a line the importer takes.
extension JSONValue {
    /// A document id: a non-negative integer, or a string of 1 to 1024 UTF-8 bytes.
    public func documentID(at path: String) throws -> DocumentID {
        switch self {
        case .int(let i) where i >= 0: return .uint(UInt64(i))
        case .uint(let u): return .uint(u)
        case .string(let s) where !s.isEmpty && s.utf8.count <= RecordCodec.maxIDBytes: return .string(s)
        default: throw TidepoolError.invalidArgument("\(path): ids are non-negative integers or strings of 1 to 1024 bytes")
        }
    }

    /// A vector given as an array of numbers.
    public func floatVector(at path: String) throws -> [Float] {
        guard case .array(let a) = self else { throw TidepoolError.invalidArgument("\(path): a vector must be an array of numbers") }
        return try a.map {
            switch $0 {
            case .double(let d): return Float(d)
            case .int(let i): return Float(i)
            case .uint(let u): return Float(u)
            default: throw TidepoolError.invalidArgument("\(path): a vector must be an array of numbers")
            }
        }
    }

    /// A vector given as base64 of little-endian float32 values.
    public func base64Vector(at path: String) throws -> [Float] {
        guard case .string(let s) = self, let data = Data(base64Encoded: s), data.count % 4 == 0 else {
            throw TidepoolError.invalidArgument("\(path) must be base64 of little-endian float32 values")
        }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
            }
        }
    }
}

/// Which keys of a JSON document hold what (`tidepool import --id-field …`).
public struct DocumentJSONFields: Sendable {
    public var id: String
    public var vector: String
    /// A key whose string becomes the attribute `textAttribute` (nil: no such key).
    public var text: String?
    public var textAttribute: String
    /// Whether keys other than these and `attributes` are attributes (flat records), or refused.
    public var flat: Bool

    public init(id: String = "id", vector: String = "vector", text: String? = nil, textAttribute: String = "text", flat: Bool = false) {
        self.id = id
        self.vector = vector
        self.text = text
        self.textAttribute = textAttribute
        self.flat = flat
    }
}

extension Document {
    /// A document from a JSON object: the id under `fields.id`; the vector under `fields.vector`
    /// (numbers) or `vector_b64`, or neither (or null) for a document without one; attributes
    /// under `attributes`, and with `fields.flat` under any other key. An empty vector, a key
    /// both flat and in `attributes`, and (not flat) an unknown key are refused, naming `path`.
    public init(json v: JSONValue, path: String, fields: DocumentJSONFields = DocumentJSONFields()) throws {
        guard case .object(let o) = v else { throw TidepoolError.invalidArgument("\(path) must be an object") }
        let known = Set([fields.id, fields.vector, "vector_b64", "attributes"] + (fields.text.map { [$0] } ?? []))
        if !fields.flat, let unknown = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw TidepoolError.invalidArgument(
                "\(path) has an unknown key '\(unknown)' (it takes \(known.sorted().joined(separator: ", ")))")
        }
        guard let idv = o[fields.id] else { throw TidepoolError.invalidArgument("\(path) has no '\(fields.id)'") }
        let vector: [Float]
        switch (o[fields.vector], o["vector_b64"]) {
        // Neither (or null): a document without a vector, found by filters, scans and text, never by vector search.
        case (.null?, nil), (nil, nil): vector = []
        case (let x?, nil): vector = try x.floatVector(at: "\(path).\(fields.vector)")
        case (nil, let x?): vector = try x.base64Vector(at: "\(path).vector_b64")
        default: throw TidepoolError.invalidArgument("\(path) takes one of '\(fields.vector)' and 'vector_b64', not both")
        }
        if vector.isEmpty && (o[fields.vector] ?? o["vector_b64"]).map({ $0 != .null }) == true {
            throw TidepoolError.invalidArgument(
                "\(path) has an empty vector; leave '\(fields.vector)' out (or null) for a document without one")
        }
        var attrs: [String: AttributeValue] = [:]
        if let a = o["attributes"] {
            guard case .object(let ao) = a else { throw TidepoolError.invalidArgument("\(path).attributes must be an object") }
            for (k, x) in ao { attrs[k] = try AttributeValue(json: x, path: "\(path).attributes.\(k)") }
        }
        if let key = fields.text, let t = o[key] {
            guard case .string(let s) = t else { throw TidepoolError.invalidArgument("\(path).\(key) must be a string") }
            attrs[fields.textAttribute] = .string(s)
        }
        if fields.flat {
            for (k, x) in o where !known.contains(k) {
                guard attrs[k] == nil else { throw TidepoolError.invalidArgument("\(path): '\(k)' is both a key and an attribute") }
                attrs[k] = try AttributeValue(json: x, path: "\(path).\(k)")
            }
        }
        self.init(id: try idv.documentID(at: "\(path).\(fields.id)"), vector: vector, attributes: attrs)
    }
}

/// JSON text for what the engine writes out (documents for `tidepool export`, and the server's
/// answers, which call these): strings escaped, numbers in their shortest round-trip form.
package enum JSONText {
    package static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A double; non-finite values (which JSON lacks) as null.
    package static func appendNumber(_ d: Double, to out: inout [UInt8]) {
        guard d.isFinite else { out.append(contentsOf: Array("null".utf8)); return }
        if d == d.rounded(), abs(d) < 1e15 { out.append(contentsOf: Array(String(Int64(d)).utf8)); return }
        out.append(contentsOf: Array(d.description.utf8))
    }

    package static func appendAttribute(_ v: AttributeValue, to out: inout [UInt8]) {
        switch v {
        case .string(let s): appendString(s, to: &out)
        case .int(let i): out.append(contentsOf: Array(String(i).utf8))
        case .float(let d): appendFloat(d, to: &out)
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .null: out.append(contentsOf: Array("null".utf8))
        case .stringArray(let a): appendList(a, to: &out) { appendString($0, to: &$1) }
        case .intArray(let a): appendList(a, to: &out) { $1.append(contentsOf: Array(String($0).utf8)) }
        case .floatArray(let a): appendList(a, to: &out) { appendFloat($0, to: &$1) }
        case .object(let o): appendObject(o, to: &out)
        }
    }

    /// An attribute map, keys sorted.
    package static func appendObject(_ o: [String: AttributeValue], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, key) in o.keys.sorted().enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            if let v = o[key] { appendAttribute(v, to: &out) }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A float attribute: always with a fraction or exponent (`2.0`), so it reads back as a float.
    package static func appendFloat(_ d: Double, to out: inout [UInt8]) {
        guard d.isFinite else { out.append(contentsOf: Array("null".utf8)); return }
        out.append(contentsOf: Array(d.description.utf8))
    }

    private static func appendList<T>(_ a: [T], to out: inout [UInt8], _ one: (T, inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "["))
        for (i, x) in a.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            one(x, &out)
        }
        out.append(UInt8(ascii: "]"))
    }
}

extension Document {
    /// One JSON Lines line (no newline) that ``init(json:path:fields:)`` reads back exactly:
    /// `{"id":…,"vector":[…],"attributes":{…}}`, the vector as float32 values in their shortest
    /// form (`0.1`, not `0.10000000149011612`) or, with `base64`, as `vector_b64`; no vector key for
    /// a document without one (or when `vectors` is false). Attribute keys sorted.
    public func jsonLine(vectors: Bool = true, base64: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + vector.count * 12)
        out.append(contentsOf: Array(#"{"id":"#.utf8))
        switch id {
        case .uint(let u): out.append(contentsOf: Array(String(u).utf8))
        case .string(let s): JSONText.appendString(s, to: &out)
        }
        if vectors && hasVector {
            if base64 {
                var le = vector.map { $0.bitPattern.littleEndian }
                let text = Data(bytes: &le, count: le.count * 4).base64EncodedString()
                out.append(contentsOf: Array(#","vector_b64":""#.utf8))
                out.append(contentsOf: Array(text.utf8))
                out.append(UInt8(ascii: "\""))
            } else {
                out.append(contentsOf: Array(#","vector":["#.utf8))
                for (i, x) in vector.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    // Float's own shortest form: reads back as the same float32.
                    out.append(contentsOf: Array((x == x.rounded() && abs(x) < 1e7 ? String(Int64(x)) : x.description).utf8))
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        if !attributes.isEmpty {
            out.append(contentsOf: Array(#","attributes":"#.utf8))
            JSONText.appendObject(attributes, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
