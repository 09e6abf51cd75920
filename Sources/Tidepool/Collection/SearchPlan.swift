/// How one vector search covers a snapshot: per container, a graph walk, an IVF search, or exact
/// scans of row ranges (split so that large scans spread across threads).
struct SearchPlan {
    /// One piece of work over one container.
    struct Unit {
        enum Kind {
            /// A walk of the container's graph over rows `0 ..< rows.upperBound`.
            case graph
            /// An IVF search of the segment.
            case ivf
            /// An exact scan of every row in `rows`.
            case scan
            /// An exact scan of the rows in `rows` that the filter allows.
            case scanAllowed
        }

        let container: Int
        let rows: Range<Int>
        let kind: Kind

        var isIndexSearch: Bool { kind == .graph || kind == .ivf }
    }

    /// Rows per exact-scan unit.
    static let scanChunk = 16_384

    private(set) var units: [Unit] = []

    /// Plans a search. Per container: the index (HNSW graph or IVF), skipping disallowed and dead
    /// rows while still routing through them, or an exact scan of all rows, or of just the rows a
    /// filter allows when they are few. A memtable's graph covers its first `indexed` rows; the
    /// newer ones are scanned.
    init(snapshot: Snapshot, exact: Bool, ef: Int, allowedCounts: [Int]?) {
        let filtered = allowedCounts != nil
        for (c, container) in snapshot.containers.enumerated() {
            if let allowedCounts, allowedCounts[c] == 0 { continue }
            switch container {
            case .segment(let s):
                let index: Unit.Kind? = s.graph != nil ? .graph : (s.ivf != nil ? .ivf : nil)
                guard !exact, let index, SearchPlan.walkBeatsScan(allowedCounts?[c], ef: ef, rows: s.rowCount) else {
                    scans(c, 0..<s.rowCount, filtered ? .scanAllowed : .scan)
                    continue
                }
                units.append(Unit(container: c, rows: 0..<s.rowCount, kind: index))
            case .memtable(_, let n, let indexed):
                let covered = exact ? 0 : indexed
                let kind: Unit.Kind = filtered ? .scanAllowed : .scan
                if covered >= Collection.memtableGraphMinRows && SearchPlan.walkBeatsScan(allowedCounts?[c], ef: ef, rows: n) {
                    units.append(Unit(container: c, rows: 0..<covered, kind: .graph))
                    scans(c, covered..<n, kind)
                } else {
                    scans(c, 0..<n, kind)
                }
            }
        }
    }

    /// With a filter admitting `allowed` of `rows` rows: an exact scan costs about `allowed`
    /// distances, a filtered walk about 32·ef / selectivity; scan when allowed² < 2·ef·rows
    /// (measured in docs/FILTERS.md). Without a filter, always walk.
    static func walkBeatsScan(_ allowed: Int?, ef: Int, rows: Int) -> Bool {
        guard let allowed else { return true }
        return allowed * allowed >= 2 * ef * rows
    }

    private mutating func scans(_ c: Int, _ rows: Range<Int>, _ kind: Unit.Kind) {
        var a = rows.lowerBound
        while a < rows.upperBound {
            units.append(Unit(container: c, rows: a..<min(a + SearchPlan.scanChunk, rows.upperBound), kind: kind))
            a += SearchPlan.scanChunk
        }
    }

    /// Containers the search touches (units are appended container by container).
    var containerCount: Int {
        var n = 0
        for i in units.indices where i == 0 || units[i].container != units[i - 1].container { n += 1 }
        return n
    }

    /// Rows scanned exactly, which decides whether the search spreads across threads.
    var scannedRows: Int { units.reduce(0) { $0 + ($1.isIndexSearch ? 0 : $1.rows.count) } }
}
