/// A consistent view for one read: every operation applied up to `visibleSeq`, over the
/// containers that held the collection at that moment. Taken under the collection's state lock
/// in a few microseconds; a read then never waits for a flush or compaction, which only publish
/// new containers.
struct Snapshot {
    let visibleSeq: UInt64
    /// Segments first (oldest first), then memtables (frozen ones, then the active one). A
    /// container's index here is the `container` of the `RowKey`s a search returns.
    let containers: [SnapshotContainer]

    /// The segments (the containers before the first memtable).
    var segments: [Segment] {
        containers.compactMap { if case .segment(let s) = $0 { return s } else { return nil } }
    }

    /// The rows of container `c` as this snapshot sees them.
    func rows(_ c: Int) -> ContainerRows { containers[c].rows(visibleSeq: visibleSeq) }

    /// Per container, the rows `filter` (validated) admits: segments through their attribute
    /// indexes, memtables row by row with the reference evaluator. Deletions are not applied.
    func allowedRows(_ filter: Filter, deadline: Deadline? = nil) throws -> [Bitmap] {
        let evaluator = FilterEvaluator(filter)
        return try containers.map { c in
            try deadline.check("evaluating a filter")
            switch c {
            case .segment(let s):
                return try s.allowedRows(filter)
            case .memtable(let m, let n, _):
                var b = Bitmap(count: n)
                var r = 0
                while r < n {
                    let end = min(r + 4096, n)
                    for row in r..<end where evaluator.matches(m.attributes[row]) { b.insert(row) }
                    r = end
                    try deadline.check("evaluating a filter over in-memory rows")
                }
                return b
            }
        }
    }

    /// Per container, the rows a vector search may return: those `filter` (validated) admits
    /// that have a vector. Nil when there is no filter and every row has a vector (the fast path
    /// of collections that hold no documents without vectors).
    func vectorSearchRows(_ filter: Filter?, deadline: Deadline? = nil) throws -> [Bitmap]? {
        let vectorless = containers.map { $0.vectorless }
        guard filter != nil || vectorless.contains(where: { $0 != nil }) else { return nil }
        if let filter {
            var allowed = try allowedRows(filter, deadline: deadline)
            for (c, v) in vectorless.enumerated() {
                if let v { allowed[c].subtract(v) }
            }
            return allowed
        }
        return containers.enumerated().map { c, container in
            switch container {
            case .segment(let s): return s.vectorRows()
            case .memtable(_, let n, _):
                var b = Bitmap(count: n, filled: true)
                if let v = vectorless[c] { b.subtract(v) }
                return b
            }
        }
    }

    /// The live rows that `filter` admits (all live rows when nil), in container order.
    func liveRows(matching filter: Filter?, deadline: Deadline? = nil) throws -> [RowKey] {
        let allowed = try filter.map { try allowedRows($0, deadline: deadline) }
        var out: [RowKey] = []
        for (ci, c) in containers.enumerated() {
            let rows = rows(ci)
            if case .segment = c, let allowed {
                allowed[ci].forEach { r in if !rows.dead.isDead(UInt32(r)) { out.append(RowKey(container: ci, row: UInt32(r))) } }
                continue
            }
            for r in 0..<c.rowCount where !rows.dead.isDead(UInt32(r)) && rows.isVisible(r) {
                if let allowed, !allowed[ci].contains(r) { continue }
                out.append(RowKey(container: ci, row: UInt32(r)))
            }
        }
        return out
    }

    func documentID(_ key: RowKey) throws -> DocumentID { try containers[key.container].documentID(Int(key.row)) }
    func attributes(_ key: RowKey) throws -> [String: AttributeValue] { try containers[key.container].attributes(Int(key.row)) }
    func vector(_ key: RowKey) throws -> [Float] { try containers[key.container].vector(Int(key.row)) }
}

/// One container of a snapshot: an immutable segment, or a memtable with the rows the snapshot
/// sees (`rows`) and how many of those its graph already covers (`indexed`).
enum SnapshotContainer {
    case segment(Segment)
    case memtable(MemTable, rows: Int, indexed: Int)

    var rowCount: Int {
        switch self {
        case .segment(let s): return s.rowCount
        case .memtable(_, let n, _): return n
        }
    }

    var tombstones: Tombstones {
        switch self {
        case .segment(let s): return s.tombstones
        case .memtable(let m, _, _): return m.tombstones
        }
    }

    func rows(visibleSeq: UInt64) -> ContainerRows {
        switch self {
        case .segment(let s):
            return ContainerRows(
                vectors: s.vectors, dead: DeadFilter(s.tombstones, visibleSeq: visibleSeq), sequences: nil, visibleSeq: visibleSeq)
        case .memtable(let m, _, _):
            return ContainerRows(
                vectors: UnsafePointer(m.vectors), dead: DeadFilter(m.tombstones, visibleSeq: visibleSeq),
                sequences: UnsafePointer(m.seqs), visibleSeq: visibleSeq)
        }
    }

    func documentID(_ row: Int) throws -> DocumentID {
        switch self {
        case .segment(let s): return try s.documentID(row)
        case .memtable(let m, _, _): return m.ids[row]
        }
    }

    func attributes(_ row: Int) throws -> [String: AttributeValue] {
        switch self {
        case .segment(let s): return try s.attributes(row)
        case .memtable(let m, _, _): return m.attributes[row]
        }
    }

    /// Row `row`'s vector; empty for a row without one.
    func vector(_ row: Int) throws -> [Float] {
        switch self {
        case .segment(let s): return try s.vectorArray(row)
        case .memtable(let m, _, _):
            return m.hasVector(row) ? Array(UnsafeBufferPointer(start: m.vector(row), count: m.dimension)) : []
        }
    }

    /// The rows without a vector, nil when there are none.
    var vectorless: Bitmap? {
        switch self {
        case .segment(let s): return s.vectorless
        case .memtable(let m, let n, _): return m.vectorlessBitmap(rows: n)
        }
    }
}
