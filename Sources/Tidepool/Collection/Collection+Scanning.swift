/// One page of a scan, and where the next page starts.
public struct ScanPage: Sendable {
    public var documents: [Document]
    /// Pass as `after:` for the next page; nil when this was the last page.
    public var next: DocumentID?
}

extension Collection {
    /// The number of live documents matching `filter` (all of them when nil). Every method here
    /// gives up with `deadlineExceeded` once `deadline` passes while matching rows.
    /// With `asOf`, counts in that kept version.
    public func count(filter: Filter?, deadline: Deadline? = nil, asOf: VersionSelector? = nil) throws -> Int {
        if filter == nil && asOf == nil { return count }
        let f = try filter?.validated(against: schema, collection: name)
        return try readSnapshot(asOf: asOf).liveRows(matching: f, deadline: deadline).count
    }

    /// Deletes every document matching `filter`, through the log like any delete. Returns how many.
    @discardableResult
    public func delete(filter: Filter, deadline: Deadline? = nil) throws -> Int {
        let f = try filter.validated(against: schema, collection: name)
        let snap = snapshot()
        // The deadline bounds finding the rows; once deletes are being logged they all go through.
        let ids = try snap.liveRows(matching: f, deadline: deadline).map { try snap.documentID($0) }
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
    /// With `asOf`, pages through that kept version.
    public func scan(
        filter: Filter? = nil, after: DocumentID? = nil, limit: Int = 1000,
        includeVectors: Bool = true, deadline: Deadline? = nil, asOf: VersionSelector? = nil
    ) throws -> ScanPage {
        guard (1...100_000).contains(limit) else {
            throw TidepoolError.invalidArgument("scan limit must be in 1...100000, got \(limit)")
        }
        let f = try filter?.validated(against: schema, collection: name)
        let snap = try readSnapshot(asOf: asOf)
        var rows: [(id: DocumentID, key: RowKey)] = []
        for key in try snap.liveRows(matching: f, deadline: deadline) {
            let id = try snap.documentID(key)
            if let after, !(after < id) { continue }
            rows.append((id, key))
        }
        rows.sort { $0.id < $1.id }
        let page = rows.prefix(limit)
        let docs: [Document] = try page.map { r in
            Document(
                id: r.id, vector: includeVectors ? try snap.vector(r.key) : [], attributes: schema.normalized(try snap.attributes(r.key)))
        }
        return ScanPage(documents: docs, next: rows.count > limit ? page.last?.id : nil)
    }

    /// Attribute names and their types.
    public var attributeTypes: [String: AttributeType] { schema.types }
}
