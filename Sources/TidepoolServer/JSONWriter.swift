import Foundation
import Tidepool

/// Writes response JSON straight into bytes. Foundation's `JSONSerialization` bridges every
/// dictionary and number through Objective-C-style boxes and cost as much CPU per query as the
/// vector search itself; this handles the few types the API produces. Keys are sorted.
enum JSONWriter {
    static func encode(_ value: Any) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        write(value, &out)
        return out
    }

    static func write(_ value: Any, _ out: inout [UInt8]) {
        switch value {
        case let r as RawJSON: out.append(contentsOf: r.bytes)
        case let s as String: writeString(s, &out)
        case let b as Bool: out.append(contentsOf: b ? Array("true".utf8) : Array("false".utf8))
        case let d as Double: writeNumber(d, &out)
        case let i as Int: out.append(contentsOf: Array(String(i).utf8))
        case let u as UInt64: out.append(contentsOf: Array(String(u).utf8))
        case let i as Int64: out.append(contentsOf: Array(String(i).utf8))
        case let f as Float: writeNumber(Double(f), &out)
        case let o as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (n, key) in o.keys.sorted().enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, &out)
                out.append(UInt8(ascii: ":"))
                write(o[key]!, &out)
            }
            out.append(UInt8(ascii: "}"))
        case let a as [Double]:
            out.append(UInt8(ascii: "["))
            for (n, x) in a.enumerated() { if n > 0 { out.append(UInt8(ascii: ",")) }; writeNumber(x, &out) }
            out.append(UInt8(ascii: "]"))
        case let a as [Any]:
            out.append(UInt8(ascii: "["))
            for (n, x) in a.enumerated() { if n > 0 { out.append(UInt8(ascii: ",")) }; write(x, &out) }
            out.append(UInt8(ascii: "]"))
        default:
            out.append(contentsOf: Array("null".utf8))  // NSNull and anything without a JSON form
        }
    }

    static func writeNumber(_ d: Double, _ out: inout [UInt8]) { JSONText.appendNumber(d, to: &out) }

    static func writeString(_ s: String, _ out: inout [UInt8]) { JSONText.appendString(s, to: &out) }
}

/// JSON already written to bytes (search hits, the hot part of a query response), embedded
/// as is by `JSONWriter`.
struct RawJSON {
    var bytes: [UInt8] = []

    /// A list of vector-search hits: `[{"attributes":…,"distance":…,"id":…,"vector":[…]},…]`,
    /// written without an intermediate dictionary per hit.
    static func hits(_ hits: [SearchHit], vectors: VectorEncoding = .float) -> RawJSON {
        var out: [UInt8] = []
        out.reserveCapacity(32 + hits.count * 48)
        out.append(UInt8(ascii: "["))
        for (n, h) in hits.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            if let a = h.attributes {
                out.append(contentsOf: #""attributes":"#.utf8)
                JSONWriter.write(attributesJSON(a), &out)
                out.append(UInt8(ascii: ","))
            }
            out.append(contentsOf: #""distance":"#.utf8)
            JSONWriter.writeNumber(Double(h.distance), &out)
            out.append(contentsOf: #","id":"#.utf8)
            switch h.id {
            case .uint(let v): out.append(contentsOf: String(v).utf8)
            case .string(let s): JSONWriter.writeString(s, &out)
            }
            if let v = h.vector, vectors == .base64 {
                out.append(contentsOf: #","vector_b64":"#.utf8)
                JSONWriter.writeString(base64String(v), &out)
            } else if let v = h.vector {
                out.append(contentsOf: #","vector":["#.utf8)
                for (i, x) in v.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    JSONWriter.writeNumber(Double(x), &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
        return RawJSON(bytes: out)
    }
}

/// What a search cost, in the response's `cost` object.
func costJSON(_ c: SearchCost) -> [String: Any] {
    [
        "containers": c.containers, "graph_searches": c.graphSearches, "rows_scanned": c.rowsScanned,
        "distances": c.distances, "quantized_distances": c.quantizedDistances, "lists_probed": c.listsProbed, "postings": c.postings,
        "search_ms": Double(c.nanoseconds) / 1e6,
    ]
}
