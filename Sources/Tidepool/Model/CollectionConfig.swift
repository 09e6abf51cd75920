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

    public init(
        hnsw: HNSWParameters = .init(), memtableBytes: Int = 64 << 20, minRowsForGraph: Int = 4096,
        maxSegments: Int = 8, attributeTypes: [String: AttributeType]? = nil, text: TextIndexConfig? = nil,
        quantization: Quantization = .none, index: IndexKind = .auto, ivf: IVFParameters = .init()
    ) {
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

    enum CodingKeys: String, CodingKey {
        case hnsw, memtableBytes, minRowsForGraph, maxSegments, attributeTypes, text, quantization, index, ivf
    }

    /// Settings absent from older manifests take their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CollectionConfig()
        self.init(
            hnsw: try c.decodeIfPresent(HNSWParameters.self, forKey: .hnsw) ?? d.hnsw,
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
            guard text.bm25.k1 >= 0, (0...1).contains(text.bm25.b) else {
                throw TidepoolError.invalidArgument("BM25 needs k1 >= 0 and b in 0...1")
            }
            for f in text.fields {
                if let t = attributeTypes?[f], t != .string && t != .stringArray {
                    throw TidepoolError.invalidArgument("text field '\(f)' is declared \(t.rawValue), not string")
                }
            }
        }
    }
}
