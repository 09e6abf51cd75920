import Foundation

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

/// A typed attribute value stored with a document.
public enum AttributeValue: Hashable, Sendable, Codable {
    case string(String)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case stringArray([String])
    case null
}

/// A document: an id, a vector and optional attributes.
public struct Document: Sendable, Equatable {
    public var id: DocumentID
    public var vector: [Float]
    public var attributes: [String: AttributeValue]

    public init(id: DocumentID, vector: [Float], attributes: [String: AttributeValue] = [:]) {
        self.id = id
        self.vector = vector
        self.attributes = attributes
    }
}

/// The distance a collection ranks by, fixed at creation.
///
/// `cosine` is served by normalizing every vector to unit length at write time
/// (and each query at search time) and ranking by inner product.
public enum Metric: String, Sendable, Codable, CaseIterable {
    /// Squared Euclidean distance.
    case l2
    /// Cosine distance, reported as `1 - cos(a, b)`.
    case cosine
    /// Inner product, larger is closer; reported as the distance `-a·b`.
    case innerProduct

    var code: UInt8 {
        switch self { case .l2: return 0; case .cosine: return 1; case .innerProduct: return 2 }
    }
    init?(code: UInt8) {
        switch code { case 0: self = .l2; case 1: self = .cosine; case 2: self = .innerProduct; default: return nil }
    }
    /// Whether the engine ranks by (negated) inner product internally.
    var usesDot: Bool { self != .l2 }

    /// Parses `l2`, `cosine`, `ip`/`innerProduct`/`inner_product`.
    public init?(name: String) {
        switch name.lowercased() {
        case "l2", "euclidean": self = .l2
        case "cosine", "cos": self = .cosine
        case "ip", "innerproduct", "inner_product", "dot": self = .innerProduct
        default: return nil
        }
    }
}

/// One search result.
public struct SearchHit: Sendable, Equatable {
    public var id: DocumentID
    /// Smaller is closer: squared L2, `1 - cos`, or `-a·b` for inner product.
    public var distance: Float
    /// Present when `SearchOptions.includeAttributes` is set.
    public var attributes: [String: AttributeValue]?
    /// Present when `SearchOptions.includeVectors` is set (normalized for cosine).
    public var vector: [Float]?
}

/// Compression of the vectors a graph walk reads.
public enum Quantization: String, Sendable, Codable, CaseIterable {
    /// Full-precision f32 only.
    case none
    /// 8-bit scalar codes per dimension (4× smaller); candidates re-ranked with f32.
    case sq8
    /// IEEE half precision (2× smaller, nearly exact); candidates re-ranked with f32.
    case f16
    /// Product quantization, one byte per `dimension / ivf.pqSubspaces` floats (16× smaller at
    /// the default); IVF segments only (HNSW segments under `auto` walk f32); re-ranked with f32.
    case pq
    /// RaBitQ, one bit per dimension plus 12 bytes per vector (about 32× smaller at 384-d); IVF
    /// segments only. Its error bound decides which candidates need the exact re-rank.
    case rabitq
}

/// Which index a segment gets.
public enum IndexKind: String, Sendable, Codable, CaseIterable {
    /// Per segment by size: flat below `minRowsForGraph`, HNSW below `ivf.minRows`, IVF above
    /// (thresholds measured in docs/QUANTIZATION.md).
    case auto
    /// Exact scans only.
    case flat
    case hnsw
    /// Inverted file: k-means lists, `nprobe` of them scanned per query.
    case ivf
}

/// Inverted-file parameters.
public struct IVFParameters: Sendable, Codable, Equatable {
    /// Lists per segment; `nil` picks 4·√rows.
    public var nlist: Int?
    /// Lists scanned per query by default; `nil` picks max(8, nlist / 32).
    public var nprobe: Int?
    /// PQ sub-spaces (code bytes per vector); must divide the dimension. `nil` picks dimension / 4.
    public var pqSubspaces: Int?
    /// Lloyd iterations when training the lists.
    public var iterations: Int
    /// Under `auto`, segments with at least this many rows get IVF instead of HNSW.
    public var minRows: Int

    public init(nlist: Int? = nil, nprobe: Int? = nil, pqSubspaces: Int? = nil, iterations: Int = 10, minRows: Int = 2_000_000) {
        self.nlist = nlist
        self.nprobe = nprobe
        self.pqSubspaces = pqSubspaces
        self.iterations = iterations
        self.minRows = minRows
    }

    enum CodingKeys: String, CodingKey { case nlist, nprobe, pqSubspaces, iterations, minRows }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = IVFParameters()
        self.init(nlist: try c.decodeIfPresent(Int.self, forKey: .nlist), nprobe: try c.decodeIfPresent(Int.self, forKey: .nprobe),
                  pqSubspaces: try c.decodeIfPresent(Int.self, forKey: .pqSubspaces),
                  iterations: try c.decodeIfPresent(Int.self, forKey: .iterations) ?? d.iterations,
                  minRows: try c.decodeIfPresent(Int.self, forKey: .minRows) ?? d.minRows)
    }

    /// The list count for a segment of `rows` rows.
    func lists(rows: Int) -> Int { max(1, min(rows, nlist ?? Int((4 * Double(rows).squareRoot()).rounded()))) }
    /// The default probe count for `nlist` lists.
    func probes(nlist: Int) -> Int { min(nlist, nprobe ?? max(8, nlist / 32)) }

    func validate(dimension: Int?) throws {
        if let nlist { guard (1...1 << 20).contains(nlist) else { throw TidepoolError.invalidArgument("ivf nlist must be in 1...1048576, got \(nlist)") } }
        if let nprobe { guard (1...1 << 20).contains(nprobe) else { throw TidepoolError.invalidArgument("ivf nprobe must be in 1...1048576, got \(nprobe)") } }
        guard (1...100).contains(iterations) else { throw TidepoolError.invalidArgument("ivf iterations must be in 1...100, got \(iterations)") }
        guard minRows >= 1 else { throw TidepoolError.invalidArgument("ivf minRows must be >= 1, got \(minRows)") }
        if let m = pqSubspaces {
            guard m >= 1 else { throw TidepoolError.invalidArgument("ivf pqSubspaces must be >= 1, got \(m)") }
            if let dimension, dimension % m != 0 {
                throw TidepoolError.invalidArgument("ivf pqSubspaces \(m) does not divide the dimension \(dimension)")
            }
        }
    }
}

/// What one search cost: how much of the collection it touched and how long it took.
public struct SearchCost: Sendable, Equatable, Codable {
    /// Segments and in-memory tables searched (those a filter rules out entirely are skipped).
    public var containers: Int = 0
    /// Graph walks (HNSW over a segment or over the in-memory tier).
    public var graphSearches: Int = 0
    /// Rows compared one by one in exact scans.
    public var rowsScanned: Int = 0
    /// Full-precision (f32) distances computed, in graph walks and scans.
    public var distances: Int = 0
    /// Distances estimated from compressed codes (quantized indexes).
    public var quantizedDistances: Int = 0
    /// IVF posting lists scanned.
    public var listsProbed: Int = 0
    /// Full-text postings read (text and hybrid queries).
    public var postings: Int = 0
    /// Wall time of the search inside the engine, in nanoseconds.
    public var nanoseconds: UInt64 = 0

    public init() {}

    /// Adds another search's counts and time (for a batch of queries).
    public mutating func add(_ o: SearchCost) {
        containers += o.containers; graphSearches += o.graphSearches; rowsScanned += o.rowsScanned
        distances += o.distances; quantizedDistances += o.quantizedDistances; postings += o.postings
        listsProbed += o.listsProbed
        nanoseconds += o.nanoseconds
    }
}

/// The hits of one search and what it cost.
public struct SearchResults: Sendable {
    public var hits: [SearchHit]
    public var cost: SearchCost
}

/// Options for one search.
public struct SearchOptions: Sendable {
    /// HNSW beam width; `nil` uses the collection's default. Raised to `k` when smaller.
    public var ef: Int?
    /// Brute force over every live vector: exact results, the ground truth of recall tests.
    public var exact: Bool
    public var includeAttributes: Bool
    public var includeVectors: Bool
    /// Candidates re-scored with full-precision vectors after a walk or a list scan over
    /// compressed codes; `nil` uses `max(ef, k)` for HNSW and `max(4·k, 40)` for IVF (RaBitQ
    /// re-scores by its error bound instead). Larger is slower and closer to the full-precision answer.
    public var rerank: Int?
    /// IVF lists scanned per segment; `nil` uses the collection's default. More is slower and
    /// closer to exact.
    public var nprobe: Int?
    /// Most threads one search may use (exact scans of large collections split across cores).
    public var maxThreads: Int
    /// Only documents matching this filter are returned: the true filtered top-k, within
    /// the index's recall, whatever the filter's selectivity.
    public var filter: Filter?

    public init(ef: Int? = nil, exact: Bool = false, includeAttributes: Bool = false,
                includeVectors: Bool = false, maxThreads: Int = ProcessInfo.processInfo.activeProcessorCount,
                filter: Filter? = nil, rerank: Int? = nil, nprobe: Int? = nil) {
        self.filter = filter
        self.nprobe = nprobe
        self.rerank = rerank
        self.ef = ef
        self.exact = exact
        self.includeAttributes = includeAttributes
        self.includeVectors = includeVectors
        self.maxThreads = max(1, maxThreads)
    }
}

/// How durable an acknowledged write is.
public enum SyncPolicy: String, Sendable, Codable {
    /// `fsync` before `upsert`/`delete` returns (concurrent writers share one fsync). Survives power loss.
    case always
    /// Written to the operating system before returning (survives a process crash);
    /// `fsync` at most every `DatabaseOptions.syncInterval`.
    case batched
    /// Written to the operating system; `fsync` only on flush and close. For bulk loads.
    case none
}

/// HNSW graph parameters.
public struct HNSWParameters: Sendable, Codable, Equatable {
    /// Links per node on upper layers (twice this on layer 0).
    public var m: Int
    /// Beam width while building.
    public var efConstruction: Int
    /// Default beam width while searching.
    public var efSearch: Int

    /// Defaults chosen so recall@10 ≥ 0.95 out of the box on real sentence embeddings.
    public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64) {
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
    }

    func validate() throws {
        guard (2...128).contains(m) else { throw TidepoolError.invalidArgument("HNSW m must be in 2...128, got \(m)") }
        guard (1...4096).contains(efConstruction) else {
            throw TidepoolError.invalidArgument("HNSW efConstruction must be in 1...4096, got \(efConstruction)")
        }
        guard (1...4096).contains(efSearch) else {
            throw TidepoolError.invalidArgument("HNSW efSearch must be in 1...4096, got \(efSearch)")
        }
    }
}

/// Per-collection settings fixed at creation (stored in the manifest).
public struct CollectionConfig: Sendable, Codable, Equatable {
    public var hnsw: HNSWParameters
    /// The in-memory tier is flushed to a segment once it holds this many bytes of vectors.
    public var memtableBytes: Int
    /// Segments with fewer rows than this are searched flat, without a graph.
    public var minRowsForGraph: Int
    /// Background compaction merges all segments once there are more than this many.
    public var maxSegments: Int
    /// Attribute types declared up front; others are inferred from the first value written.
    public var attributeTypes: [String: AttributeType]?
    /// Full-text (BM25) index over string attributes; nil for none.
    public var text: TextIndexConfig?
    /// How segments with a graph also store their vectors compressed for the graph walk
    /// (full-precision vectors stay in the segment for re-ranking). Applies to segments
    /// written after it is set (flushes and compactions).
    public var quantization: Quantization
    /// Which index segments get (`auto`: by size).
    public var index: IndexKind
    public var ivf: IVFParameters

    public init(hnsw: HNSWParameters = .init(), memtableBytes: Int = 64 << 20, minRowsForGraph: Int = 4096,
                maxSegments: Int = 8, attributeTypes: [String: AttributeType]? = nil, text: TextIndexConfig? = nil,
                quantization: Quantization = .none, index: IndexKind = .auto, ivf: IVFParameters = .init()) {
        self.quantization = quantization
        self.index = index
        self.ivf = ivf
        self.attributeTypes = attributeTypes
        self.text = text
        self.hnsw = hnsw
        self.memtableBytes = memtableBytes
        self.minRowsForGraph = minRowsForGraph
        self.maxSegments = maxSegments
    }

    enum CodingKeys: String, CodingKey { case hnsw, memtableBytes, minRowsForGraph, maxSegments, attributeTypes, text, quantization, index, ivf }

    /// Settings absent from older manifests take their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CollectionConfig()
        self.init(hnsw: try c.decodeIfPresent(HNSWParameters.self, forKey: .hnsw) ?? d.hnsw,
                  memtableBytes: try c.decodeIfPresent(Int.self, forKey: .memtableBytes) ?? d.memtableBytes,
                  minRowsForGraph: try c.decodeIfPresent(Int.self, forKey: .minRowsForGraph) ?? d.minRowsForGraph,
                  maxSegments: try c.decodeIfPresent(Int.self, forKey: .maxSegments) ?? d.maxSegments,
                  attributeTypes: try c.decodeIfPresent([String: AttributeType].self, forKey: .attributeTypes),
                  text: try c.decodeIfPresent(TextIndexConfig.self, forKey: .text),
                  quantization: try c.decodeIfPresent(Quantization.self, forKey: .quantization) ?? .none,
                  index: try c.decodeIfPresent(IndexKind.self, forKey: .index) ?? .auto,
                  ivf: try c.decodeIfPresent(IVFParameters.self, forKey: .ivf) ?? .init())
    }

    /// Checks every setting; the errors name the bad one.
    public func validate(dimension: Int? = nil) throws {
        try hnsw.validate()
        try ivf.validate(dimension: dimension)
        // RaBitQ stores a dimension × dimension rotation and builds it in O(dimension³).
        if quantization == .rabitq, let dimension, dimension > 4096 {
            throw TidepoolError.invalidArgument("quantization rabitq supports dimensions up to 4096, got \(dimension)")
        }
        if (quantization == .pq || quantization == .rabitq) && (index == .hnsw || index == .flat) {
            throw TidepoolError.invalidArgument(
                "quantization \(quantization.rawValue) needs index ivf or auto (HNSW walks use sq8 or f16), got index \(index.rawValue)")
        }
        // The memtable reserves this much address space up front: bound it.
        guard (4096...(1 << 32)).contains(memtableBytes) else {
            throw TidepoolError.invalidArgument("memtableBytes must be in 4096...4294967296, got \(memtableBytes)")
        }
        guard minRowsForGraph >= 0 else { throw TidepoolError.invalidArgument("minRowsForGraph must be >= 0") }
        guard maxSegments >= 1 else { throw TidepoolError.invalidArgument("maxSegments must be >= 1") }
        if let text {
            guard !text.fields.isEmpty, text.fields.allSatisfy({ !$0.isEmpty }) else {
                throw TidepoolError.invalidArgument("text index needs at least one field, and field names are not empty")
            }
            guard text.bm25.k1 >= 0, (0...1).contains(text.bm25.b) else { throw TidepoolError.invalidArgument("BM25 needs k1 >= 0 and b in 0...1") }
            for f in text.fields {
                if let t = attributeTypes?[f], t != .string && t != .stringArray {
                    throw TidepoolError.invalidArgument("text field '\(f)' is declared \(t.rawValue), not string")
                }
            }
        }
    }
}
