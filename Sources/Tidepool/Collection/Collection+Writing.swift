import Foundation

/// The write path: validate the whole batch, log it (group commit, `WriteAheadLog`), apply it
/// to memory in log order; memtables fill, freeze and are indexed into their graph as rows arrive.
extension Collection {
    /// Inserts or replaces documents. Returns when the batch is as durable as the
    /// database's sync policy promises; the whole batch is validated first, so a bad
    /// document (wrong dimension, NaN or infinity, zero vector under cosine) changes nothing.
    /// A document with an empty vector has none (``Document/init(id:attributes:)``).
    public func upsert(_ documents: [Document]) throws {
        let log = try writableLog("write")
        if documents.isEmpty { return }
        guard documents.count <= 1_000_000 else {
            throw TidepoolError.invalidArgument("collection '\(name)': batch of \(documents.count) documents exceeds 1,000,000")
        }
        var docs = documents
        for i in docs.indices {
            try validate(&docs[i])
        }
        try checkAttributeTypes(&docs)
        try waitForFlushRoom()
        try log.commit(.upsert(docs))
    }

    /// Inserts or replaces one document.
    public func upsert(_ document: Document) throws { try upsert([document]) }

    /// Deletes documents by id; ids that do not exist are ignored. Returns how many existed.
    @discardableResult
    public func delete(ids: [DocumentID]) throws -> Int {
        let log = try writableLog("delete")
        if ids.isEmpty { return 0 }
        for id in ids {
            try RecordCodec.validate(Document(id: id, vector: []), collection: name)
        }
        let existing = state.withLock { ids.reduce(0) { $0 + (idMap[$1] == nil ? 0 : 1) } }
        try log.commit(.delete(ids))
        return existing
    }

    private func validate(_ doc: inout Document) throws {
        // A document without a vector: stored, filtered, scanned and text-searched, never vector-searched.
        if !doc.hasVector {
            try RecordCodec.validate(doc, collection: name)
            return
        }
        guard doc.vector.count == dimension else {
            throw TidepoolError.dimensionMismatch(collection: name, expected: dimension, got: doc.vector.count)
        }
        try RecordCodec.validate(doc, collection: name)
        try VectorCheck.prepare(&doc.vector, metric: metric, what: "collection '\(name)': document \(doc.id)")
    }

    /// Checks every attribute against the schema and records new attributes' types. The whole
    /// batch is checked before anything is logged, so a type clash changes nothing.
    private func checkAttributeTypes(_ docs: inout [Document]) throws {
        try schemaLock.withLock {
            var pending: [String: AttributeType] = [:]
            for i in docs.indices where !docs[i].attributes.isEmpty {
                docs[i].attributes = try schemaValue.check(docs[i].attributes, pending: &pending, collection: name, id: docs[i].id)
            }
            for (k, t) in pending { schemaValue.types[k] = t }
        }
    }

    /// Backpressure: writers wait while too many frozen memtables await flushing.
    /// While flushes fail, writes go on until the backlog is full, then fail with the reason.
    private func waitForFlushRoom() throws {
        state.lock()
        defer { state.unlock() }
        while frozen.count >= Collection.maxFrozen && backgroundError == nil && !closed {
            state.wait()
        }
        if closed { throw TidepoolError.closed("collection '\(name)' is closed") }
        if frozen.count >= Collection.maxFrozen, let e = backgroundError {
            throw TidepoolError.closed(
                "collection '\(name)': writes wait for \(frozen.count) memtables to flush, and flushing fails (retrying): \(e)")
        }
    }

    /// Called by the WAL leader with a durable batch, in sequence order.
    func applyBatch(_ batch: [WriteAheadLog.Pending]) {
        state.lock()
        let frozenBefore = frozen.count
        for p in batch { applyLocked(p.op, seq: p.seq) }
        if storage.logsAreObjects {
            logObjectsSinceFreeze += 1
            if logObjectsSinceFreeze >= Collection.maxUnflushedLogObjects && active.count > 0 { freezeActive() }
        }
        let needsFlush = frozen.count > frozenBefore
        scheduleIndexingLocked()
        state.unlock()
        if needsFlush { scheduleFlush() }
    }

    /// Applies one operation to memory. Caller holds `state` (or is the only thread, during recovery).
    func applyLocked(_ op: WALOperation, seq: UInt64) {
        switch op {
        case .upsert(let docs):
            if active.room < docs.count { freezeActive(minCapacity: docs.count) }
            inferTypes(docs)
            for d in docs {
                let row = active.append(d, seq: seq, terms: configValue.text?.terms(d.attributes) ?? [])
                if let old = idMap[d.id] { markDead(old, seq: seq) }
                idMap[d.id] = RowRef(container: active.containerID, row: UInt32(row))
            }
        case .delete(let ids):
            for id in ids {
                if let old = idMap.removeValue(forKey: id) { markDead(old, seq: seq) }
            }
        }
        visibleSeq = seq
    }

    /// Records the types of attributes first seen in replayed documents (live writes were checked already).
    private func inferTypes(_ docs: [Document]) {
        schemaLock.withLock {
            for d in docs {
                for (k, v) in d.attributes { schemaValue.observe(k, v) }
            }
        }
    }

    private func markDead(_ ref: RowRef, seq: UInt64) {
        if ref.container & memtableIDBit != 0 {
            memtablesByID[ref.container]?.tombstones.mark(Int(ref.row), seq: seq)
        } else {
            segmentsByID[ref.container]?.tombstones.mark(Int(ref.row), seq: seq)
        }
    }

    /// A memtable, with a graph to index into when it can hold enough rows to need one.
    static func makeMemTable(
        id: UInt64, capacity: Int, dimension: Int, metric: Metric,
        config: CollectionConfig
    ) -> MemTable {
        let graphed = capacity >= max(config.minRowsForGraph, Collection.memtableGraphMinRows)
        return MemTable(
            containerID: id, dimension: dimension, capacity: capacity, metric: metric,
            hnsw: graphed ? config.hnsw : nil, seed: 100 &+ (id & ~memtableIDBit))
    }

    /// Queues the indexer if the active memtable has rows not yet in its graph. Caller holds `state`.
    func scheduleIndexingLocked() {
        // Fewer rows are scanned exactly anyway; the graph (sized for the memtable) waits for them.
        guard !indexerScheduled, !closed, active.hasGraph, active.count >= Collection.memtableGraphMinRows,
            active.count > active.indexedCount
        else { return }
        indexerScheduled = true
        indexer.async { [weak self] in self?.indexPending() }
    }

    /// Inserts the active memtable's new rows into its graph, a batch at a time, until caught up.
    /// A memtable frozen meanwhile is finished by its flush instead.
    private func indexPending() {
        while true {
            let next: (MemTable, Int, Int)? = state.withLock {
                let m = active
                guard !closed, m.hasGraph, m.count > m.indexedCount else {
                    indexerScheduled = false
                    return nil
                }
                // A large backlog (a bulk write) gets every core, as a flush's build would.
                let bulk = m.count - m.indexedCount > 4 * Collection.indexBatch
                let batch = bulk ? 4 * Collection.indexBatch : Collection.indexBatch
                return (m, min(m.count, m.indexedCount + batch), bulk ? buildThreads : 1)
            }
            guard let (m, upTo, threads) = next else { return }
            do {
                try m.index(upTo: upTo, threads: threads)
            } catch {
                // The rows stay findable (scanned exactly); a later batch tries again, the flush too.
                logger.error("collection '\(name)': indexing the in-memory rows failed: \(error)")
                state.withLock { indexerScheduled = false }
                return
            }
        }
    }

    func freezeActive(minCapacity: Int = 0) {
        logObjectsSinceFreeze = 0
        active.lastSeq = visibleSeq
        frozen.append(active)
        let id = memtableIDBit | nextMemtableID
        nextMemtableID += 1
        active = Collection.makeMemTable(
            id: id, capacity: max(memtableRows, minCapacity), dimension: dimension,
            metric: metric, config: configValue)
        memtablesByID[id] = active
        wal?.requestRotation()
    }
}
