/// A segment's graph block, in whichever layout it was written: version 3 (`VarintGraph`) since
/// rows are stored in cluster order, versions 1 and 2 (`FixedGraph`, `CompactGraph`) in older
/// segments. A search dispatches once per walk (`visit`), so each layout's walk is specialized.
enum StoredGraph: @unchecked Sendable {
    case fixed(FixedGraph)
    case compact(CompactGraph)
    case varint(VarintGraph)

    /// Parses and validates a graph block. Every link is checked to be in range, and every
    /// upper-level link to lead to a node on that level, so a damaged graph is an error naming
    /// `file` and the absolute offset, never an out-of-bounds read.
    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, expectedCount: Int) throws {
        var r = ByteReader(bytes, file: file, fileOffset: fileOffset)
        let header = try GraphHeader.decode(&r, expectedCount: expectedCount)
        switch header.version {
        case FixedGraphLayout.version:
            self = .fixed(try FixedGraph(header: header, bytes: bytes, file: file, fileOffset: fileOffset))
        case CompactGraphLayout.version:
            self = .compact(try CompactGraph(header: header, reader: &r, bytes: bytes, file: file, fileOffset: fileOffset))
        default:
            self = .varint(try VarintGraph(header: header, reader: &r, bytes: bytes, file: file, fileOffset: fileOffset))
        }
    }

    /// Runs the visitor over the layout's own type.
    func visit<V: StoredGraphVisitor>(_ visitor: inout V) {
        switch self {
        case .fixed(let g): visitor.visit(g)
        case .compact(let g): visitor.visit(g)
        case .varint(let g): visitor.visit(g)
        }
    }

    private var layout: any StoredGraphLayout {
        switch self {
        case .fixed(let g): return g
        case .compact(let g): return g
        case .varint(let g): return g
        }
    }

    var version: Int { Int(layout.header.version) }
    var m: Int { layout.m }
    var m0: Int { layout.m0 }
    var count: Int { layout.count }
    var maxLevel: Int { layout.maxLevel }
    var entryPoint: UInt32 { layout.entryPoint }
    var meanDegree: Double { layout.meanDegree }
    func level(_ node: UInt32) -> Int { layout.level(node) }
    func level0IDs(_ node: UInt32) -> [UInt32] { layout.level0IDs(node) }
    func upperIDs(_ node: UInt32, level: Int) -> [UInt32] { layout.upperIDs(node, level: level) }
}

/// Work done with a stored graph, specialized per layout (see `StoredGraph.visit`).
protocol StoredGraphVisitor {
    mutating func visit<G: StoredGraphLayout>(_ graph: G)
}
