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
        let held = try objects.lease.isHeld { try Self.noNewerManifest(objects) }
        return held ? head : nil
    }

    /// The lease's probe: whether no manifest version after this writer's own exists. One that
    /// does is a successor's (or this writer's own commit still in flight, which cannot be told
    /// apart yet): either way, no answer until the next confirmation.
    private static func noNewerManifest(_ objects: ObjectStorage) throws -> Bool {
        try objects.store.head(ObjectStorage.manifestKey(objects.currentManifestVersion + 1)) == nil
    }

    /// `writerHead(collection:)` when it needs no store request (the writer confirmed it is the
    /// writer within `WriterLease.answerWindow`), else nil: a server answers this on its event
    /// loop, and goes to its engine threads only for the rest. A confirmation older than
    /// `WriterLease.renewAfter` is renewed in the background.
    public func writerHeadWithoutWaiting(collection name: String) -> WriterHead? {
        guard !options.readOnly, let objects = storage as? ObjectStorage, objects.lease.isFresh,
            let coll = try? collection(name), let wal = coll.wal
        else { return nil }
        let head = WriterHead(manifestVersion: objects.currentManifestVersion, walHead: wal.acknowledgedSeq)
        objects.lease.renewInBackgroundIfDue { try Self.noNewerManifest(objects) }
        // Still fresh after reading: the answer was vouched for when it was read.
        return objects.lease.isFresh ? head : nil
    }

    /// `writerHeadWithoutWaiting(collection:)` with how much longer the writer may vouch for it
    /// without a new confirmation (for leases on the head a query node may rely on that long).
    public func writerHeadLease(collection name: String) -> (head: WriterHead, validFor: Duration)? {
        guard let head = writerHeadWithoutWaiting(collection: name), let objects = storage as? ObjectStorage,
            let left = objects.lease.remainingWindow
        else { return nil }
        return (head, left)
    }

    /// On a writer on object storage: what it has acknowledged in `collection` so far (nil for a
    /// collection it does not have, and anywhere else), vouched for or not.
    public func acknowledgedHead(collection name: String) -> WriterHead? {
        guard !options.readOnly, let objects = storage as? ObjectStorage, let coll = try? collection(name), let wal = coll.wal else {
            return nil
        }
        return WriterHead(manifestVersion: objects.currentManifestVersion, walHead: wal.acknowledgedSeq)
    }

    /// `catchUp(since:)` for a read of `collection` when the writer reported `head` after the
    /// read began: returns without a store request when this node holds that state already.
    public func catchUp(since: ContinuousClock.Instant, collection name: String, to head: WriterHead?) throws {
        if let head, readPosition(collection: name)?.covers(head) == true { return }
        try catchUp(since: since)
    }

    /// On a query node: the state of `collection` a read that starts now sees at least (the
    /// manifest version loaded and the last sequence number applied), or nil elsewhere. A read
    /// begun after this returned answers for every write of a `WriterHead` it `covers`.
    public func readPosition(collection name: String) -> WriterHead? {
        guard options.readOnly, let objects = storage as? ObjectStorage, let coll = try? collection(name) else { return nil }
        // The collection first: a version loaded later installs its collections before it is
        // published, so the pair never claims more than the collection holds.
        let seq = coll.state.withLock { coll.visibleSeq }
        return WriterHead(manifestVersion: objects.currentManifestVersion, walHead: seq)
    }
}

extension Database {
    /// On a writer on object storage: whether another writer has committed the manifest version
    /// after this one's own (it took over; this one acknowledges nothing more and should serve
    /// as a query node). One `HEAD`; a version this writer is committing itself carries its own
    /// commit token and does not count. False anywhere else.
    public func supersededAsWriter() throws -> Bool {
        guard !options.readOnly, let objects = storage as? ObjectStorage else { return false }
        guard let next = try objects.store.head(ObjectStorage.manifestKey(objects.currentManifestVersion + 1)) else { return false }
        return next.token.map { !$0.hasPrefix(objects.writerID + "-") } ?? true
    }

    /// Whether this is a read-only database on object storage following a writer (a query node).
    public var followsAWriter: Bool { options.readOnly && storage is ObjectStorage }
}
