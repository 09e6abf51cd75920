import Foundation
import Tidepool

// Conversions between JSON request/response values and the engine's types.

func checkKeys(_ o: [String: JSONValue], _ allowed: Set<String>, _ what: String) throws {
    if let unknown = o.keys.sorted().first(where: { !allowed.contains($0) }) {
        throw APIError(
            .badRequest, "unknown_field", "\(what) has an unknown field '\(unknown)' (allowed: \(allowed.sorted().joined(separator: ", ")))"
        )
    }
}

func string(_ o: [String: JSONValue], _ key: String, default d: String? = nil) throws -> String {
    switch o[key] {
    case .string(let s)?: return s
    case nil: if let d { return d }; throw APIError.badRequest("'\(key)' is required")
    default: throw APIError.badRequest("'\(key)' must be a string")
    }
}

func int(_ o: [String: JSONValue], _ key: String, default d: Int64? = nil) throws -> Int64 {
    switch o[key] {
    case .int(let i)?: return i
    case nil: if let d { return d }; throw APIError.badRequest("'\(key)' is required")
    default: throw APIError.badRequest("'\(key)' must be an integer")
    }
}

func double(_ o: [String: JSONValue], _ key: String, default d: Double) throws -> Double {
    switch o[key] {
    case .double(let x)?: return x
    case .int(let i)?: return Double(i)
    case .uint(let u)?: return Double(u)
    case nil: return d
    default: throw APIError.badRequest("'\(key)' must be a number")
    }
}

func bool(_ o: [String: JSONValue], _ key: String, default d: Bool) throws -> Bool {
    switch o[key] {
    case .bool(let b)?: return b
    case nil: return d
    default: throw APIError.badRequest("'\(key)' must be true or false")
    }
}

func stringList(_ v: JSONValue, _ what: String) throws -> [String] {
    guard case .array(let a) = v else { throw APIError.badRequest("'\(what)' must be an array of strings") }
    return try a.map {
        guard case .string(let s) = $0 else { throw APIError.badRequest("'\(what)' must be an array of strings") }; return s
    }
}

func metricValue(_ v: JSONValue) throws -> Metric {
    guard case .string(let s) = v, let m = Metric(name: s) else { throw APIError.badRequest("'metric' must be l2, cosine or ip") }
    return m
}

/// The engine's JSON readings (Tidepool's `DocumentJSON.swift`), their refusals as 400 `invalid_request`.
private func request<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch TidepoolError.invalidArgument(let m) { throw APIError.badRequest(m) }
}

func documentID(_ v: JSONValue) throws -> DocumentID { try request { try v.documentID(at: "id") } }

func idJSON(_ id: DocumentID) -> Any {
    switch id {
    case .uint(let v): return v
    case .string(let s): return s
    }
}

func floatVector(_ v: JSONValue) throws -> [Float] { try request { try v.floatVector(at: "vector") } }

/// Base64 of little-endian float32 values: the compact encoding for bulk upserts.
func base64Vector(_ v: JSONValue) throws -> [Float] { try base64Vector(v, field: "vector_b64") }

func base64Vector(_ v: JSONValue, field: String) throws -> [Float] { try request { try v.base64Vector(at: "'\(field)'") } }

func attributesJSON(_ a: [String: AttributeValue]) -> [String: Any] { a.mapValues(attributeJSON) }

func attributeJSON(_ v: AttributeValue) -> Any {
    switch v {
    case .string(let s): return s
    case .int(let i): return i
    case .float(let d): return d
    case .bool(let b): return b
    case .stringArray(let xs): return xs
    case .intArray(let xs): return xs
    case .floatArray(let xs): return xs
    case .object(let o): return attributesJSON(o)
    case .null: return NSNull()
    }
}

func document(_ v: JSONValue, at index: Int) throws -> Document { try request { try Document(json: v, path: "documents[\(index)]") } }

/// How vectors travel in answers: JSON numbers (default), or `"base64"` — one string of
/// little-endian float32 a vector, exact and about a third of the bytes.
enum VectorEncoding: String {
    case float, base64

    init(_ body: [String: JSONValue]) throws {
        guard let v = body["vector_encoding"] else { self = .float; return }
        guard case .string(let s) = v, let e = VectorEncoding(rawValue: s) else {
            throw APIError.badRequest("'vector_encoding' must be \"float\" or \"base64\"")
        }
        self = e
    }

    /// The field name and value of a vector in this encoding.
    func field(_ v: [Float]) -> (String, Any) {
        switch self {
        case .float: return ("vector", v.map(Double.init))
        case .base64: return ("vector_b64", base64String(v))
        }
    }
}

func base64String(_ v: [Float]) -> String {
    var bytes = [UInt8]()
    bytes.reserveCapacity(v.count * 4)
    for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
    return Data(bytes).base64EncodedString()
}

func encode(_ d: Document, vectors: VectorEncoding?) -> [String: Any] {
    var o: [String: Any] = ["id": idJSON(d.id), "attributes": attributesJSON(d.attributes)]
    if let vectors {
        if d.hasVector {
            let (key, value) = vectors.field(d.vector)
            o[key] = value
        } else {
            o["vector"] = NSNull()  // this document has no vector
        }
    }
    return o
}

func filter(_ v: JSONValue) throws -> Filter { try Filter(json: v, path: "filter") }

func collectionConfig(_ v: JSONValue?) throws -> CollectionConfig {
    guard let v else { return CollectionConfig() }
    guard case .object(let o) = v else { throw APIError.badRequest("'config' must be an object") }
    try checkKeys(o, IndexSettings.keys.union(["text_fields", "memtable_bytes", "attribute_types"]), "config")
    var c = CollectionConfig(memtableBytes: Int(try int(o, "memtable_bytes", default: 64 << 20)))
    try IndexSettings(o).apply(to: &c)
    if let tf = o["text_fields"] { c.text = TextIndexConfig(fields: try stringList(tf, "text_fields")) }
    if let raw = o["attribute_types"] {
        guard case .object(let at) = raw else { throw APIError.badRequest("'attribute_types' must be an object") }
        c.attributeTypes = try at.mapValues {
            guard case .string(let s) = $0, let t = AttributeType(rawValue: s) else {
                throw APIError.badRequest("attribute types are string, int, float, bool or stringArray")
            }
            return t
        }
    }
    return c
}

/// The index settings of a `config` object (creation, or PATCH): each given one replaces the
/// collection's; validation is the engine's.
struct IndexSettings {
    static let keys: Set<String> = [
        "m", "ef_construction", "ef_search", "quantization", "index", "nlist", "nprobe",
        "pq_subspaces", "ivf_min_rows",
    ]
    var m, efConstruction, efSearch, nlist, nprobe, pqSubspaces, ivfMinRows: Int?
    var quantization: Quantization?
    var index: IndexKind?

    init(_ o: [String: JSONValue]) throws {
        func optionalInt(_ key: String) throws -> Int? { o[key] == nil ? nil : Int(try int(o, key)) }
        m = try optionalInt("m")
        efConstruction = try optionalInt("ef_construction")
        efSearch = try optionalInt("ef_search")
        nlist = try optionalInt("nlist")
        nprobe = try optionalInt("nprobe")
        pqSubspaces = try optionalInt("pq_subspaces")
        ivfMinRows = try optionalInt("ivf_min_rows")
        if let q = o["quantization"] {
            guard case .string(let name) = q, let value = Quantization(rawValue: name) else {
                throw APIError.badRequest("'quantization' must be \"none\", \"sq8\", \"f16\", \"pq\" or \"rabitq\"")
            }
            quantization = value
        }
        if let q = o["index"] {
            guard case .string(let name) = q, let value = IndexKind(rawValue: name) else {
                throw APIError.badRequest("'index' must be \"auto\", \"flat\", \"hnsw\" or \"ivf\"")
            }
            index = value
        }
    }

    func apply(to c: inout CollectionConfig) {
        if let m { c.hnsw.m = m }
        if let efConstruction { c.hnsw.efConstruction = efConstruction }
        if let efSearch { c.hnsw.efSearch = efSearch }
        if let quantization { c.quantization = quantization }
        if let index { c.index = index }
        if let nlist { c.ivf.nlist = nlist }
        if let nprobe { c.ivf.nprobe = nprobe }
        if let pqSubspaces { c.ivf.pqSubspaces = pqSubspaces }
        if let ivfMinRows { c.ivf.minRows = ivfMinRows }
    }
}

func healthJSON(_ h: CollectionHealth) -> [String: Any] {
    switch h {
    case .ok: return ["status": "ok"]
    case .degraded(let reason): return ["status": "degraded", "reason": reason]
    }
}

func describe(_ c: Tidepool.Collection) -> [String: Any] {
    let info = c.info()
    let o: [String: Any] = [
        "name": info.name, "dimension": info.dimension, "metric": info.metric.rawValue, "count": info.count,
        "segments": info.segments.map {
            [
                "id": $0.id, "rows": $0.rows, "deleted_rows": $0.deletedRows, "bytes": $0.bytes, "hnsw": $0.hasGraph,
                "code_bytes": $0.codeBytes, "index": $0.index, "ivf_bytes": $0.ivfBytes, "tier": $0.tier.rawValue,
                "tier_bytes": $0.tierBytes,
            ] as [String: Any]
        },
        "bytes": info.segments.reduce(0) { $0 + $1.bytes } + info.walBytes, "wal_bytes": info.walBytes,
        "memtable_rows": info.memtableRows, "version": c.version, "last_seq": info.lastSeq,
        "memtable_indexed_rows": info.memtableIndexedRows,
        "attribute_types": c.attributeTypes.mapValues(\.rawValue),
        "health": healthJSON(c.health),
        "config": [
            "m": c.config.hnsw.m, "ef_construction": c.config.hnsw.efConstruction, "ef_search": c.config.hnsw.efSearch,
            "text_fields": c.config.text?.fields ?? [], "quantization": c.config.quantization.rawValue,
            "index": c.config.index.rawValue, "nlist": c.config.ivf.nlist.map { $0 as Any } ?? NSNull(),
            "nprobe": c.config.ivf.nprobe.map { $0 as Any } ?? NSNull(),
            "pq_subspaces": c.config.ivf.pqSubspaces.map { $0 as Any } ?? NSNull(), "ivf_min_rows": c.config.ivf.minRows,
        ] as [String: Any],
    ]
    return o
}
