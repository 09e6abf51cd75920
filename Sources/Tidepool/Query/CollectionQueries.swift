/// One page of a scan, and where the next page starts.
public struct ScanPage: Sendable {
    public var documents: [Document]
    /// Pass as `after:` for the next page; nil when this was the last page.
    public var next: DocumentID?
}

extension Collection {
    /// The live rows of a snapshot that `filter` admits (all live rows when nil), as
    /// (container index, row) pairs.
    func matchingRows(_ snap: Snapshot, _ filter: Filter?) throws -> [(container: Int, row: Int)] {
        let allowed = try filter.map { try allowedRows(snap, $0) }
        var out: [(Int, Int)] = []
        for (ci, s) in snap.segments.enumerated() {
            let dead = DeadFilter(s.tombstones, visibleSeq: snap.visibleSeq)
            if let allowed {
                allowed[ci].forEach { r in if !dead.isDead(UInt32(r)) { out.append((ci, r)) } }
            } else {
                for r in 0..<s.rowCount where !dead.isDead(UInt32(r)) { out.append((ci, r)) }
            }
        }
        for (mi, (m, n)) in snap.memtables.enumerated() {
            let ci = snap.segments.count + mi
            let dead = DeadFilter(m.tombstones, visibleSeq: snap.visibleSeq)
            for r in 0..<n where !dead.isDead(UInt32(r)) && m.seqs[r] <= snap.visibleSeq {
                if let allowed, !allowed[ci].contains(r) { continue }
                out.append((ci, r))
            }
        }
        return out
    }

    private func documentID(_ snap: Snapshot, _ c: Int, _ row: Int) throws -> DocumentID {
        c < snap.segments.count ? try snap.segments[c].documentID(row) : snap.memtables[c - snap.segments.count].0.ids[row]
    }

    /// The number of live documents matching `filter` (all of them when nil).
    public func count(filter: Filter?) throws -> Int {
        guard let filter else { return count }
        let f = try filter.validated(against: schema, collection: name)
        return try matchingRows(snapshot(), f).count
    }

    /// Deletes every document matching `filter`, through the log like any delete. Returns how many.
    @discardableResult
    public func delete(filter: Filter) throws -> Int {
        let f = try filter.validated(against: schema, collection: name)
        let snap = snapshot()
        let ids = try matchingRows(snap, f).map { try documentID(snap, $0.container, $0.row) }
        var i = 0
        while i < ids.count {
            let end = min(i + 10_000, ids.count)
            try delete(ids: Array(ids[i..<end]))
            i = end
        }
        return ids.count
    }

    /// Documents matching `filter` in id order (integers, then strings), `limit` at a time,
    /// starting after `after`. For export: pass each page's `next` to get the following one.
    public func scan(filter: Filter? = nil, after: DocumentID? = nil, limit: Int = 1000,
                     includeVectors: Bool = true) throws -> ScanPage {
        guard (1...100_000).contains(limit) else {
            throw TidepoolError.invalidArgument("scan limit must be in 1...100000, got \(limit)")
        }
        let f = try filter?.validated(against: schema, collection: name)
        let snap = snapshot()
        var rows: [(id: DocumentID, container: Int, row: Int)] = []
        for m in try matchingRows(snap, f) {
            let id = try documentID(snap, m.container, m.row)
            if let after, !(after < id) { continue }
            rows.append((id, m.container, m.row))
        }
        rows.sort { $0.id < $1.id }
        let page = rows.prefix(limit)
        let docs: [Document] = try page.map { r in
            if r.container < snap.segments.count {
                let s = snap.segments[r.container]
                return Document(id: r.id, vector: includeVectors ? s.vectorArray(r.row) : [], attributes: try s.attributes(r.row))
            }
            let m = snap.memtables[r.container - snap.segments.count].0
            return Document(id: r.id, vector: includeVectors ? Array(UnsafeBufferPointer(start: m.vector(r.row), count: dimension)) : [],
                            attributes: m.attributes[r.row])
        }
        return ScanPage(documents: docs, next: rows.count > limit ? page.last?.id : nil)
    }

    /// Attribute names and their types.
    public var attributeTypes: [String: AttributeType] { schema.types }
}
