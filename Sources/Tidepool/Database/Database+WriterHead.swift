import Foundation

/// Strong reads on a query node for the price of one request to the writer: the writer says
/// what it has acknowledged (`writerHead`), and a query node that already holds that state
/// (`catchUp(since:collection:to:)`) asks the store nothing. `WriterLease` keeps the writer's
/// answer from missing writes of a successor that took over.
extension Database {
    /// The URL the writer serves on, as the loaded manifest names it (nil: an embedded writer, or
    /// a local directory).
    public var writerURL: String? { lock.withLock { manifest.writer } }

    /// On a writer on object storage: its last committed manifest version and `collection`'s last
    /// acknowledged sequence number, or nil when it cannot vouch for them now (it is not a
    /// writer on object storage, or a newer manifest version than its own exists: it may have
    /// been replaced). Costs a `HEAD` at most every `WriterLease.renewAfter`.
    public func writerHead(collection name: String) throws -> WriterHead? {
        let coll = try collection(name)  // an unknown collection is `collectionNotFound` anywhere
        guard !options.readOnly, let objects = storage as? ObjectStorage, let wal = coll.wal else { return nil }
        // Read before the confirmation: what the answer reports was acknowledged before it.
        let head = WriterHead(manifestVersion: objects.currentManifestVersion, walHead: wal.acknowledgedSeq)
        let held = try objects.lease.isHeld {
            // A version after this writer's own is a successor's (or this writer's own commit
            // still in flight, which cannot be told apart yet): either way, no answer now.
            let own = objects.currentManifestVersion
            return try objects.store.head(ObjectStorage.manifestKey(own + 1)) == nil
        }
        return held ? head : nil
    }

    /// `writerHead(collection:)` when it needs no store request (the writer confirmed it is the
    /// writer moments ago), else nil: a server answers this on its event loop, and goes to its
    /// engine threads only for the rest.
    public func writerHeadWithoutWaiting(collection name: String) -> WriterHead? {
        guard !options.readOnly, let objects = storage as? ObjectStorage, objects.lease.isFresh,
            let coll = try? collection(name), let wal = coll.wal
        else { return nil }
        let head = WriterHead(manifestVersion: objects.currentManifestVersion, walHead: wal.acknowledgedSeq)
        // Still fresh after reading: the answer was vouched for when it was read.
        return objects.lease.isFresh ? head : nil
    }

    /// `catchUp(since:)` for a read of `collection` when the writer reported `head` after the
    /// read began: returns without a store request when this node holds that state already.
    public func catchUp(since: ContinuousClock.Instant, collection name: String, to head: WriterHead?) throws {
        if let head, let objects = storage as? ObjectStorage, options.readOnly,
            objects.currentManifestVersion >= head.manifestVersion, let coll = try? collection(name),
            coll.state.withLock({ coll.visibleSeq }) >= head.walHead
        {
            return
        }
        try catchUp(since: since)
    }
}

extension Database {
    /// Whether this is a read-only database on object storage following a writer (a query node).
    public var followsAWriter: Bool { options.readOnly && storage is ObjectStorage }
}
