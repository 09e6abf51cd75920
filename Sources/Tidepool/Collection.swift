import Foundation
import Logging
import Metrics
import TidepoolKernels

/// Where a document's current version lives.
struct RowRef: Equatable {
    var container: UInt64
    var row: UInt32
}

/// Memtables get container ids with the top bit set; segments use their segment id.
let memtableIDBit: UInt64 = 1 << 63

/// A named set of documents with a fixed dimension and metric.
///
/// All methods are thread-safe. Writes are logged (group commit) before they are
/// applied, searches run on a snapshot and never wait for a flush or compaction.
public final class Collection: @unchecked Sendable {
    public let name: String
    public let dimension: Int
    public let metric: Metric
    /// The collection's settings; index settings can change (``updateIndexSettings(_:)``).
    public var config: CollectionConfig { state.withLock { configValue } }
    /// Guarded by `state`.
    private var configValue: CollectionConfig

    let storage: LocalStorage
    let folder: String
    let logger: Logger
    /// Weak: a collection outliving its database gets a `closed` error, not a crash.
    weak var database: Database?
    let distance: DistanceFunction
    /// Set once recovery has replayed the old log.
    private(set) var wal: WriteAheadLog!
    let memtableRows: Int
    let buildThreads: Int

    // State guarded by `state`.
    private let state = NSCondition()
    private var active: MemTable
    private var frozen: [MemTable] = []
    private var segments: [Segment] = []
    private var idMap: [DocumentID: RowRef] = [:]
    private var memtablesByID: [UInt64: MemTable] = [:]
    private var segmentsByID: [UInt64: Segment] = [:]
    private var visibleSeq: UInt64 = 0
    private var flushedSeq: UInt64 = 0
    private var nextSegmentID: UInt64 = 1
    private var nextMemtableID: UInt64 = 1
    private var closed = false
    private var backgroundError: TidepoolError?
    /// Attribute types; guarded by `schemaLock` (taken after `state` when both are needed).
    private let schemaLock = NSLock()
    private var schemaValue: AttributeSchema
    var schema: AttributeSchema { schemaLock.withLock { schemaValue } }

    /// Flushes and compactions run here, one at a time.
    private let background: DispatchQueue
    /// Indexes the active memtable's new rows into its graph, one batch at a time.
    private let indexer: DispatchQueue
    /// An indexer task is queued or running (guarded by `state`).
    private var indexerScheduled = false
    /// Rows the indexer inserts before publishing them (and before looking for a newer memtable).
    private static let indexBatch = 1_024
    /// Below this many indexed rows a memtable is scanned exactly: the walk would not save enough.
    static let memtableGraphMinRows = 2_048
    /// Frozen memtables allowed to await flushing before writers wait (bounds memory at about
    /// `(maxFrozen + 1) × memtableBytes`); graph builds are slower than ingest, so allow a few.
    private static let maxFrozen = 4

    init(database: Database, entry: Manifest.CollectionEntry, storage: LocalStorage, options: DatabaseOptions) throws {
        self.database = database
        name = entry.name
        dimension = entry.dimension
        metric = entry.metric
        configValue = entry.config
        self.storage = storage
        folder = "collections/" + entry.name
        logger = options.logger
        distance = DistanceFunction(metric: entry.metric, dimension: entry.dimension)
        memtableRows = max(256, entry.config.memtableBytes / (entry.dimension * 4))
        buildThreads = options.buildThreads
        background = DispatchQueue(label: "tidepool.background.\(entry.name)")
        indexer = DispatchQueue(label: "tidepool.indexer.\(entry.name)", qos: .utility)
        flushedSeq = entry.flushedSeq
        nextSegmentID = entry.nextSegmentID
        schemaValue = AttributeSchema(types: entry.schema ?? entry.config.attributeTypes ?? [:])
        active = Collection.makeMemTable(id: memtableIDBit | 0, capacity: memtableRows, dimension: entry.dimension,
                                         metric: entry.metric, config: entry.config)
        memtablesByID[active.containerID] = active

        // Segments, with their persisted tombstones.
        for s in entry.segments {
            let seg = try Segment(id: s.id, name: folder + "/segments/" + s.file, storage: storage,
                                  dimension: dimension, metric: metric, verifyChecksums: options.verifyChecksumsOnOpen)
            guard seg.rowCount == s.rows else {
                throw TidepoolError.corrupt(file: seg.path, offset: 0, reason: "segment has \(seg.rowCount) rows, manifest says \(s.rows)")
            }
            for r in s.deleted {
                guard Int(r) < seg.rowCount else {
                    throw TidepoolError.corrupt(file: storage.path(LocalStorage.manifestName), offset: 0,
                                                reason: "collection '\(name)': tombstone row \(r) beyond segment \(s.file)'s \(seg.rowCount) rows")
                }
                seg.tombstones.mark(Int(r), seq: 1)
            }
            segments.append(seg)
            segmentsByID[seg.id] = seg
        }
        idMap.reserveCapacity(entry.segments.reduce(0) { $0 + $1.rows })
        for seg in segments {
            for r in 0..<seg.rowCount where seg.tombstones.seq(r) == 0 {
                let id = try seg.documentID(r)
                if let old = idMap[id], let oldSeg = segmentsByID[old.container] {
                    // Cannot happen in a sound database; keep the newer segment's copy.
                    oldSeg.tombstones.mark(Int(old.row), seq: 1)
                }
                idMap[id] = RowRef(container: seg.id, row: UInt32(r))
            }
        }
        visibleSeq = flushedSeq

        // Replay the log past the last flush.
        let replayed = try WriteAheadLog.replay(storage: storage, folder: folder + "/wal", dimension: dimension,
                                               afterSeq: flushedSeq, logger: logger) { seq, op in
            applyLocked(op, seq: seq)
        }
        wal = try WriteAheadLog(storage: storage, folder: folder + "/wal", dimension: dimension, collection: name,
                                policy: options.syncPolicy, syncInterval: options.syncInterval, lastSeq: replayed)
        wal.apply = { [unowned self] batch in self.applyBatch(batch) }
        wal.deleteFiles(upTo: flushedSeq)
        removeOrphanSegments(entry: entry)
        // A crash may have come between a settings change and the rebuild it asks for.
        if !frozen.isEmpty || segmentsOutOfDate() { scheduleFlush() }
        state.withLock { scheduleIndexingLocked() }
    }

    /// Changes the collection's index settings: HNSW parameters, the row count from which
    /// segments get a graph, and quantization. The new settings are persisted at once (atomically,
    /// with the manifest); segments built under other settings are rebuilt by a background
    /// compaction, which a crash can interrupt safely: the next open resumes it. Searches keep
    /// running on the old segments meanwhile. Text, attribute and memtable settings cannot change.
    public func updateIndexSettings(_ change: (inout CollectionConfig) -> Void) throws {
        var err: Error?
        // On `background`, which also runs flushes and compactions: concurrent updates apply one
        // after the other, each to the settings the previous one left.
        background.sync {
            let old = config
            var new = old
            change(&new)
            do {
                try new.validate(dimension: dimension)
                guard new.text == old.text, new.attributeTypes == old.attributeTypes, new.memtableBytes == old.memtableBytes else {
                    throw TidepoolError.invalidArgument(
                        "collection '\(name)': only index settings (hnsw, minRowsForGraph, maxSegments, quantization) can change")
                }
                let (segs, cutoff) = state.withLock { () -> ([Segment], UInt64) in
                    configValue = new
                    return (segments, flushedSeq)
                }
                try owner().persist(collection: manifestEntry(segments: segs, flushedSeq: cutoff))
            } catch {
                err = error
                state.withLock { configValue = old }
            }
        }
        if let err { throw err }
        if segmentsOutOfDate() { scheduleFlush() }
    }

    /// Whether some segment was built under index settings other than the current ones.
    func segmentsOutOfDate() -> Bool {
        let (segs, cfg) = state.withLock { (segments, configValue) }
        return segs.contains { SegmentPlan(segment: $0) != SegmentPlan(rows: $0.rowCount, dimension: dimension, config: cfg) }
    }

    private func removeOrphanSegments(entry: Manifest.CollectionEntry) {
        let live = Set(entry.segments.map(\.file))
        for f in (try? storage.list(folder + "/segments")) ?? [] where !live.contains(f) {
            logger.info("removing orphan segment file \(folder)/segments/\(f)")
            try? storage.delete(folder + "/segments/" + f)
        }
    }

    // MARK: Writing

    /// Inserts or replaces documents. Returns when the batch is as durable as the
    /// database's sync policy promises; the whole batch is validated first, so a bad
    /// document (wrong dimension, NaN or infinity, zero vector under cosine) changes nothing.
    public func upsert(_ documents: [Document]) throws {
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
        try wal.commit(.upsert(docs))
    }

    /// Inserts or replaces one document.
    public func upsert(_ document: Document) throws { try upsert([document]) }

    /// Deletes documents by id; ids that do not exist are ignored. Returns how many existed.
    @discardableResult
    public func delete(ids: [DocumentID]) throws -> Int {
        if ids.isEmpty { return 0 }
        for id in ids {
            try RecordCodec.validate(Document(id: id, vector: []), collection: name)
        }
        let existing = state.withLock { ids.reduce(0) { $0 + (idMap[$1] == nil ? 0 : 1) } }
        try wal.commit(.delete(ids))
        return existing
    }

    private func validate(_ doc: inout Document) throws {
        guard doc.vector.count == dimension else {
            throw TidepoolError.dimensionMismatch(collection: name, expected: dimension, got: doc.vector.count)
        }
        try RecordCodec.validate(doc, collection: name)
        var norm: Float = 0
        for (i, x) in doc.vector.enumerated() {
            guard x.isFinite else {
                throw TidepoolError.invalidArgument("collection '\(name)': document \(doc.id) has a non-finite value (\(x)) at index \(i)")
            }
            norm += x * x
        }
        if metric == .cosine {
            guard norm > 0, norm.isFinite else {
                throw TidepoolError.invalidArgument("collection '\(name)': document \(doc.id) has a zero vector, which has no cosine")
            }
            let inv = 1 / norm.squareRoot()
            for i in doc.vector.indices { doc.vector[i] *= inv }
        }
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

    /// Checks a query vector (dimension, finite values) and normalizes it for cosine.
    func validatedQuery(_ vector: [Float]) throws -> Document {
        guard vector.count == dimension else {
            throw TidepoolError.dimensionMismatch(collection: name, expected: dimension, got: vector.count)
        }
        if let i = vector.firstIndex(where: { !$0.isFinite }) {
            throw TidepoolError.invalidArgument("collection '\(name)': query vector has a non-finite value (\(vector[i])) at index \(i)")
        }
        var q = Document(id: .uint(0), vector: vector)
        if metric == .cosine {
            let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }
            guard norm > 0, norm.isFinite else {
                throw TidepoolError.invalidArgument("collection '\(name)': query vector is zero, which has no cosine")
            }
            let inv = 1 / norm.squareRoot()
            for i in q.vector.indices { q.vector[i] *= inv }
        }
        return q
    }

    /// Backpressure: writers wait while too many frozen memtables await flushing.
    private func waitForFlushRoom() throws {
        state.lock()
        defer { state.unlock() }
        while frozen.count >= Collection.maxFrozen && backgroundError == nil && !closed {
            state.wait()
        }
        if let e = backgroundError { throw e }
        if closed { throw TidepoolError.closed("collection '\(name)' is closed") }
    }

    /// Called by the WAL leader with a durable batch, in sequence order.
    private func applyBatch(_ batch: [WriteAheadLog.Pending]) {
        state.lock()
        let frozenBefore = frozen.count
        for p in batch { applyLocked(p.op, seq: p.seq) }
        let needsFlush = frozen.count > frozenBefore
        scheduleIndexingLocked()
        state.unlock()
        if needsFlush { scheduleFlush() }
    }

    /// Applies one operation to memory. Caller holds `state` (or is the only thread, during recovery).
    private func applyLocked(_ op: WALOperation, seq: UInt64) {
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
                for (k, v) in d.attributes where schemaValue.types[k] == nil {
                    if let t = AttributeType(of: v) { schemaValue.types[k] = t }
                }
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
    private static func makeMemTable(id: UInt64, capacity: Int, dimension: Int, metric: Metric,
                                     config: CollectionConfig) -> MemTable {
        let graphed = capacity >= max(config.minRowsForGraph, Collection.memtableGraphMinRows)
        return MemTable(containerID: id, dimension: dimension, capacity: capacity, metric: metric,
                        hnsw: graphed ? config.hnsw : nil, seed: 100 &+ (id & ~memtableIDBit))
    }

    /// Queues the indexer if the active memtable has rows not yet in its graph. Caller holds `state`.
    private func scheduleIndexingLocked() {
        // Fewer rows are scanned exactly anyway; the graph (sized for the memtable) waits for them.
        guard !indexerScheduled, !closed, active.hasGraph, active.count >= Collection.memtableGraphMinRows,
              active.count > active.indexedCount else { return }
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
            m.index(upTo: upTo, threads: threads)
        }
    }

    private func freezeActive(minCapacity: Int = 0) {
        active.lastSeq = visibleSeq
        frozen.append(active)
        let id = memtableIDBit | nextMemtableID
        nextMemtableID += 1
        active = Collection.makeMemTable(id: id, capacity: max(memtableRows, minCapacity), dimension: dimension,
                                         metric: metric, config: configValue)
        memtablesByID[id] = active
        wal?.requestRotation()
    }

    // MARK: Flush and compaction

    /// Writes everything in memory to a segment and waits for it (and any earlier flush) to finish.
    public func flush() throws {
        state.lock()
        // Deletes alone also advance the sequence; flushing persists them as tombstones.
        if active.count > 0 || visibleSeq > (frozen.last?.lastSeq ?? flushedSeq) { freezeActive() }
        state.unlock()
        scheduleFlush()
        background.sync {}
        if let e = state.withLock({ backgroundError }) { throw e }
    }

    /// Merges all segments into one, dropping deleted rows and rebuilding the graph; waits for it.
    public func compact() throws {
        try flush()
        var err: Error?
        background.sync {
            do { try self.timed("tidepool_compaction_duration") { try self.compactNow() } } catch { err = error }
        }
        if let err { throw err }
    }

    private func scheduleFlush() {
        background.async { [weak self] in
            guard let self else { return }
            do {
                while let m = self.state.withLock({ self.frozen.first }) {
                    try self.timed("tidepool_flush_duration") { try self.flushNow(m) }
                }
                if self.needsCompaction() { try self.timed("tidepool_compaction_duration") { try self.compactNow() } }
            } catch {
                let e = error as? TidepoolError ?? .io(path: self.folder, operation: "flush", errno: EIO)
                self.logger.error("collection '\(self.name)': background flush failed: \(e)")
                self.state.withLock { self.backgroundError = e }
                self.state.broadcast()
            }
        }
    }

    /// Records how long a flush or compaction took (swift-metrics timer, per collection).
    private func timed(_ label: String, _ body: () throws -> Void) rethrows {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        Timer(label: label, dimensions: [("collection", name)]).recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }

    /// Too many segments, or a segment whose persisted deletions exceed a fifth of its rows.
    private func needsCompaction() -> Bool {
        let (segs, cutoff) = state.withLock { (segments, flushedSeq) }
        if segs.count > config.maxSegments || segmentsOutOfDate() { return true }
        return segs.contains { $0.tombstones.deadCount(at: cutoff) * 5 > $0.rowCount }
    }

    /// Persists the oldest frozen memtable as a segment. Runs on `background` only.
    private func flushNow(_ m: MemTable) throws {
        let cutoff = m.lastSeq
        // Rows replaced or deleted by operations up to `cutoff` are dropped for good.
        var keep: [Int] = []
        keep.reserveCapacity(m.count)
        for r in 0..<m.count {
            let t = m.tombstones.seq(r)
            if t == 0 || t > cutoff { keep.append(r) }
        }
        // With few deletions, the memtable's own graph becomes the segment's: all rows are
        // written, the dead ones as persisted tombstones (compaction drops them later).
        let plansGraph: Bool
        if case .hnsw = SegmentPlan(rows: m.count, dimension: dimension, config: config) { plansGraph = true } else { plansGraph = false }
        let reuseGraph = m.hasGraph && plansGraph && !keep.isEmpty
            && (m.count - keep.count) * 10 <= m.count
        if reuseGraph {
            m.index(upTo: m.count, threads: buildThreads)
            keep = Array(0..<m.count)
        }
        var newSegment: Segment?
        if !keep.isEmpty {
            let segID = state.withLock { () -> UInt64 in defer { nextSegmentID += 1 }; return nextSegmentID }
            let contiguous = keep.count == m.count
            let buffer: UnsafeMutablePointer<Float> = contiguous ? m.vectors : .allocate(capacity: keep.count * dimension)
            defer { if !contiguous { buffer.deallocate() } }
            if !contiguous {
                for (i, r) in keep.enumerated() { (buffer + i * dimension).update(from: m.vector(r), count: dimension) }
            }
            let contents = SegmentContents(dimension: dimension, metric: metric, rowCount: keep.count, vectors: buffer,
                                           ids: keep.map { m.ids[$0] }, attributes: keep.map { m.attributes[$0] }, maxSeq: cutoff)
            let (seg, order) = try writeSegment(contents, id: segID, graph: reuseGraph ? m.graph : nil)
            // A graph segment stores its rows in cluster order: row i of the segment is keep[order[i]].
            if let order { keep = order.map { keep[Int($0)] } }
            // Deletions persisted by this flush go into the manifest with it.
            for (i, r) in keep.enumerated() {
                let t = m.tombstones.seq(r)
                if t != 0 && t <= cutoff { seg.tombstones.mark(i, seq: t) }
            }
            newSegment = seg
        }
        // Publish: manifest first (durable), then memory.
        let current = state.withLock { segments }
        let all = current + (newSegment.map { [$0] } ?? [])
        try owner().persist(collection: manifestEntry(segments: all, flushedSeq: cutoff))
        state.lock()
        if let seg = newSegment {
            for (i, r) in keep.enumerated() {
                let t = m.tombstones.seq(r)
                if t != 0 { seg.tombstones.mark(i, seq: t) }
                let id = m.ids[r]
                if idMap[id] == RowRef(container: m.containerID, row: UInt32(r)) {
                    idMap[id] = RowRef(container: seg.id, row: UInt32(i))
                }
            }
            segments.append(seg)
            segmentsByID[seg.id] = seg
        }
        frozen.removeFirst()
        memtablesByID[m.containerID] = nil
        flushedSeq = cutoff
        let caughtUp = frozen.isEmpty
        state.unlock()
        state.broadcast()
        if caughtUp { wal.rotateIfIdle() }
        wal.deleteFiles(upTo: cutoff)
    }

    private func owner() throws -> Database {
        guard let database else { throw TidepoolError.closed("collection '\(name)': its database was released") }
        return database
    }

    /// Writes a segment file and opens it, with the index the planner picks for its size;
    /// `graph` is a memtable's finished graph over exactly these rows, reused when the plan is HNSW.
    /// A graph segment stores its rows in cluster order (`RowOrder`); the order is returned
    /// (`order[row] = index in contents`), nil when the rows are stored as given.
    private func writeSegment(_ contents: SegmentContents, id: UInt64, graph: HNSWBuilder? = nil) throws -> (Segment, [UInt32]?) {
        let file = SegmentFormat.fileName(id: id)
        let name = folder + "/segments/" + file
        let cfg = config
        var order: [UInt32]?
        switch SegmentPlan(rows: contents.rowCount, dimension: dimension, config: cfg) {
        case .flat:
            _ = try SegmentWriter.write(contents, graph: nil, text: textSection(contents), to: name, storage: storage)
        case .hnsw(_, let q):
            // The graph is built over the rows as given, inserted in a shuffled order (rows
            // compacted from cluster-ordered segments arrive grouped), then renumbered with them.
            let builder = graph ?? {
                let b = HNSWBuilder(vectors: contents.vectors, count: contents.rowCount, dimension: dimension,
                                    metric: metric, parameters: cfg.hnsw, seed: 100 &+ id)
                b.build(threads: buildThreads, order: RowOrder.shuffled(count: contents.rowCount, seed: 200 &+ id))
                return b
            }()
            order = RowOrder.clustered(contents.vectors, count: contents.rowCount, dimension: dimension,
                                       seed: 100 &+ id, threads: buildThreads)
            let buffer: UnsafeMutablePointer<Float>? = order == nil ? nil : .allocate(capacity: contents.rowCount * dimension)
            defer { buffer?.deallocate() }
            let rows = order.map { contents.reordered($0, into: buffer!) } ?? contents
            _ = try builder.stored(rows: contents.rowCount, order: order).withUnsafeBytes {
                try SegmentWriter.write(rows, graph: $0, text: textSection(rows), codes: codesSection(rows, q), to: name, storage: storage)
            }
        case .ivf(let codec, let nlist, let m):
            let section = IVFFormat.build(contents.vectors, count: contents.rowCount, dimension: dimension, metric: metric,
                                          nlist: nlist, codec: codec, pqSubspaces: m, iterations: cfg.ivf.iterations,
                                          seed: 100 &+ id, threads: buildThreads)
            _ = try SegmentWriter.write(contents, graph: nil, text: textSection(contents), codes: (.ivf, section), to: name, storage: storage)
        }
        return (try Segment(id: id, name: name, storage: storage, dimension: dimension, metric: metric, verifyChecksums: false), order)
    }

    /// Compressed vectors for a graph segment's walk.
    private func codesSection(_ c: SegmentContents, _ q: Quantization) -> (SegmentFormat.Kind, [UInt8])? {
        switch q {
        case .none, .pq, .rabitq: return nil
        case .sq8: return (.sq8, ScalarQuantizer.section(c.vectors, count: c.rowCount, dimension: dimension))
        case .f16: return (.f16, HalfPrecision.section(c.vectors, count: c.rowCount, dimension: dimension))
        }
    }

    private func textSection(_ c: SegmentContents) -> [UInt8]? {
        guard let text = config.text else { return nil }
        return TextIndexFormat.build(rows: c.rowCount) { text.terms(c.attributes[$0]) }
    }

    /// Merges every segment into one. Runs on `background` only.
    private func compactNow() throws {
        let (olds, cutoff) = state.withLock { (segments, flushedSeq) }
        guard olds.count > 1 || olds.contains(where: { $0.tombstones.deadCount(at: cutoff) > 0 }) || segmentsOutOfDate() else { return }
        // Rows whose deletion is already persisted (at or below the flushed sequence) are dropped;
        // later deletions are carried over as tombstones, as the WAL still holds them.
        var sources: [(Segment, Int)] = []
        for s in olds {
            for r in 0..<s.rowCount {
                let t = s.tombstones.seq(r)
                if t == 0 || t > cutoff { sources.append((s, r)) }
            }
        }
        var newSegment: Segment?
        if !sources.isEmpty {
            let segID = state.withLock { () -> UInt64 in defer { nextSegmentID += 1 }; return nextSegmentID }
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: sources.count * dimension)
            defer { buffer.deallocate() }
            var ids: [DocumentID] = []
            var attrs: [[String: AttributeValue]] = []
            ids.reserveCapacity(sources.count)
            attrs.reserveCapacity(sources.count)
            for (i, (s, r)) in sources.enumerated() {
                (buffer + i * dimension).update(from: s.vector(r), count: dimension)
                ids.append(try s.documentID(r))
                attrs.append(try s.attributes(r))
            }
            let contents = SegmentContents(dimension: dimension, metric: metric, rowCount: sources.count, vectors: buffer,
                                           ids: ids, attributes: attrs, maxSeq: olds.map(\.maxSeq).max() ?? 0)
            let (seg, order) = try writeSegment(contents, id: segID)
            // Row i of the new segment is sources[order[i]].
            if let order { sources = order.map { sources[Int($0)] } }
            newSegment = seg
        }
        try owner().persist(collection: manifestEntry(segments: newSegment.map { [$0] } ?? [], flushedSeq: cutoff))
        state.lock()
        let oldIDs = Set(olds.map(\.id))
        if let seg = newSegment {
            for (i, (s, r)) in sources.enumerated() {
                let t = s.tombstones.seq(r)
                if t != 0 { seg.tombstones.mark(i, seq: t) }
            }
            // Remap ids that still point into the merged segments.
            for (i, (s, r)) in sources.enumerated() where s.tombstones.seq(r) == 0 {
                if let id = try? seg.documentID(i) { idMap[id] = RowRef(container: seg.id, row: UInt32(i)) }
            }
            segmentsByID[seg.id] = seg
        }
        segments.removeAll { oldIDs.contains($0.id) }
        if let seg = newSegment { segments.insert(seg, at: 0) }
        for id in oldIDs { segmentsByID[id] = nil }
        state.unlock()
        // Open snapshots keep their mappings; unlinking a mapped file is safe.
        for s in olds { try? storage.delete(s.name) }
    }

    private func manifestEntry(segments segs: [Segment], flushedSeq: UInt64) -> Manifest.CollectionEntry {
        Manifest.CollectionEntry(
            name: name, dimension: dimension, metric: metric, config: config, flushedSeq: flushedSeq,
            nextSegmentID: state.withLock { nextSegmentID },
            segments: segs.map {
                Manifest.SegmentEntry(id: $0.id, file: SegmentFormat.fileName(id: $0.id), rows: $0.rowCount,
                                      bytes: $0.byteCount, deleted: $0.tombstones.deletedRows(upTo: flushedSeq))
            }, schema: schema.types)
    }

    func close() throws {
        background.sync {}
        state.withLock { closed = true }
        state.broadcast()
        indexer.sync {}
        try wal.close()
    }

    func syncWAL() { wal.syncIfDirty() }

    // MARK: Reading

    /// A consistent view for one read: everything applied up to `visibleSeq`.
    struct Snapshot {
        let visibleSeq: UInt64
        let segments: [Segment]
        let memtables: [(MemTable, Int)]
        /// Per memtable, the rows findable through its graph (at most its row count here).
        let memIndexed: [Int]
    }

    func snapshot() -> Snapshot {
        state.withLock {
            let mems = frozen + [active]
            return Snapshot(visibleSeq: visibleSeq, segments: segments, memtables: mems.map { ($0, $0.count) },
                            memIndexed: mems.map { min($0.indexedCount, $0.count) })
        }
    }

    /// The number of live documents.
    public var count: Int { state.withLock { idMap.count } }

    /// Returns the documents that exist among `ids`, in the order asked (missing ids are skipped).
    public func get(ids: [DocumentID]) throws -> [Document] {
        enum Place { case memtable(MemTable, Int), segment(Segment, Int) }
        var found: [(DocumentID, Place)] = []
        state.withLock {
            for id in ids {
                guard let ref = idMap[id] else { continue }
                if ref.container & memtableIDBit != 0 {
                    if let m = memtablesByID[ref.container] { found.append((id, .memtable(m, Int(ref.row)))) }
                } else if let s = segmentsByID[ref.container] {
                    found.append((id, .segment(s, Int(ref.row))))
                }
            }
        }
        return try found.map { id, place in
            switch place {
            case .memtable(let m, let row):
                return Document(id: id, vector: Array(UnsafeBufferPointer(start: m.vector(row), count: dimension)),
                                attributes: m.attributes[row])
            case .segment(let s, let row):
                return Document(id: id, vector: s.vectorArray(row), attributes: try s.attributes(row))
            }
        }
    }

    /// The `k` nearest live documents to `vector`, closest first.
    ///
    /// Uses each segment's HNSW graph (beam width `options.ef`, default the collection's `efSearch`),
    /// and scans small segments and the in-memory tier exactly; `options.exact` scans everything.
    public func search(vector: [Float], k: Int, options: SearchOptions = SearchOptions()) throws -> [SearchHit] {
        try searchWithCost(vector: vector, k: k, options: options).hits
    }

    /// As ``search(vector:k:options:)``, and reports what the search cost (containers searched,
    /// graph walks, rows scanned, distances computed, time).
    public func searchWithCost(vector: [Float], k: Int, options: SearchOptions = SearchOptions()) throws -> SearchResults {
        let start = DispatchTime.now().uptimeNanoseconds
        guard k >= 1 && k <= 10_000 else { throw TidepoolError.invalidArgument("k must be in 1...10000, got \(k)") }
        if let ef = options.ef, ef < 1 || ef > 100_000 {
            throw TidepoolError.invalidArgument("ef must be in 1...100000, got \(ef)")
        }
        if let r = options.rerank, r < 1 || r > 100_000 {
            throw TidepoolError.invalidArgument("rerank must be in 1...100000, got \(r)")
        }
        if let p = options.nprobe, p < 1 || p > 1 << 20 {
            throw TidepoolError.invalidArgument("nprobe must be in 1...1048576, got \(p)")
        }
        let q = try validatedQuery(vector)
        var options = options
        options.filter = try options.filter?.validated(against: schema, collection: name)
        let snap = snapshot()
        var cost = SearchCost()
        let top = try q.vector.withUnsafeBufferPointer { qp in
            try searchSnapshot(snap, query: qp.baseAddress!, k: k, options: options, cost: &cost)
        }
        let hits = try resolve(top, snap: snap, options: options)
        cost.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return SearchResults(hits: hits, cost: cost)
    }

    /// Container index in the snapshot (segments first, then memtables) and row, packed.
    @inline(__always) private func key(_ container: Int, _ row: UInt32) -> UInt64 { UInt64(container) << 32 | UInt64(row) }

    enum UnitKind { case graph, ivf, flat, flatAllowed }

    /// Searches a snapshot. Per container the planner picks: the HNSW graph (skipping
    /// disallowed and dead rows while still routing through them), or an exact scan of all
    /// rows, or an exact scan of just the rows a filter allows when they are few.
    func searchSnapshot(_ snap: Snapshot, query: UnsafePointer<Float>, k: Int, options: SearchOptions,
                        cost: inout SearchCost) throws -> TopK {
        let ef = max(options.ef ?? config.hnsw.efSearch, k)
        let allowed = try options.filter.map { try allowedRows(snap, $0) }
        let allowedCounts = allowed?.map(\.cardinality)   // counted once per query
        // Work units: graph searches, and flat scans split into row ranges.
        var work: [(container: Int, start: Int, end: Int, kind: UnitKind)] = []
        let chunk = 16_384
        func flatUnits(_ c: Int, _ rows: Int, _ kind: UnitKind, from: Int = 0) {
            var a = from
            while a < rows { work.append((c, a, min(a + chunk, rows), kind)); a += chunk }
        }
        for (ci, s) in snap.segments.enumerated() {
            if let allowedCounts {
                let n = allowedCounts[ci]
                if n == 0 { continue }
                // Exact scan costs about n distances; a filtered graph search about
                // 32·ef / selectivity. Scan when n² < 32·ef·rows (measured in docs/FILTERS.md).
                if !options.exact, s.graph != nil || s.ivf != nil, n * n >= 2 * ef * s.rowCount {
                    work.append((ci, 0, s.rowCount, s.graph != nil ? .graph : .ivf))
                } else {
                    flatUnits(ci, s.rowCount, .flatAllowed)
                }
            } else if !options.exact, s.graph != nil {
                work.append((ci, 0, s.rowCount, .graph))
            } else if !options.exact, s.ivf != nil {
                work.append((ci, 0, s.rowCount, .ivf))
            } else {
                flatUnits(ci, s.rowCount, .flat)
            }
        }
        for (mi, (_, n)) in snap.memtables.enumerated() {
            // The graph covers rows below `indexed`; newer rows are scanned.
            let c = snap.segments.count + mi
            let indexed = options.exact ? 0 : snap.memIndexed[mi]
            let flatKind: UnitKind = allowed == nil ? .flat : .flatAllowed
            if let allowedCounts, allowedCounts[c] == 0 { continue }
            let walk = indexed >= Collection.memtableGraphMinRows
                && (allowedCounts.map { $0[c] * $0[c] >= 2 * ef * n } ?? true)
            if walk {
                work.append((c, 0, indexed, .graph))
                flatUnits(c, n, flatKind, from: indexed)
            } else {
                flatUnits(c, n, flatKind)
            }
        }
        let units = work
        // Units are appended container by container: count the changes (no set per query).
        for i in units.indices where i == 0 || units[i].container != units[i - 1].container { cost.containers += 1 }
        let flatRows = units.reduce(0) { $0 + ($1.kind == .graph || $1.kind == .ivf ? 0 : $1.end - $1.start) }
        let threads = min(options.maxThreads, flatRows >= 65_536 ? ProcessInfo.processInfo.activeProcessorCount : 1, units.count)

        /// One graph walk over rows `0..<u.end` of a container; falls back to an exact scan of
        /// them when the walk cannot reach k admissible rows (a filter or deletions cut the graph).
        func walk<G: HNSWLinks>(_ g: G, entry: (UInt32, Int), nodes: Int, _ u: (container: Int, start: Int, end: Int, kind: UnitKind),
                                vectors: UnsafePointer<Float>, codes: CompressedVectors?, dead: DeadFilter,
                                visible: (UnsafeMutablePointer<UInt64>, UInt64)?,
                                into top: inout TopK, cost: inout SearchCost, scratch: SearchScratch) {
            var found = TopK(k: k)
            cost.graphSearches += 1
            let limit = UInt32(u.end)
            /// One graph search with distances from `rows`, emitting its best `depth` rows.
            func graphSearch<D: RowDistance>(_ rows: D, depth: Int, _ emit: (Float, UInt32) -> Void) -> Int {
                if let allowed {
                    // Below this selectivity, two-hop expansion beats computing distances to
                    // disallowed nodes (measured in docs/FILTERS.md).
                    let twoHop = (allowedCounts?[u.container] ?? u.end) * 4 < u.end
                    return allowed[u.container].words.withUnsafeBufferPointer { w in
                        hnswSearch(g, entryPoint: entry.0, maxLevel: entry.1, count: nodes, distance: rows, k: depth, ef: ef,
                                   admit: AdmitBelow(inner: AdmitLiveAllowed(dead: dead, allowed: w.baseAddress!), limit: limit),
                                   twoHop: twoHop, scratch: scratch, emit: emit)
                    }
                }
                return hnswSearch(g, entryPoint: entry.0, maxLevel: entry.1, count: nodes, distance: rows, k: depth, ef: ef,
                                  admit: AdmitBelow(inner: AdmitLive(dead: dead), limit: limit), twoHop: false,
                                  scratch: scratch, emit: emit)
            }
            /// Walk over compressed vectors, then re-score the best candidates with the f32 ones.
            func reranked<D: RowDistance>(_ rows: D) {
                let depth = max(options.rerank ?? ef, k)
                let candidates = scratch.rerankBuffer(depth)
                var n = 0
                cost.quantizedDistances += graphSearch(rows, depth: depth) { _, row in
                    if n < depth { candidates[n] = row; n += 1 }
                }
                for i in 0..<n { tp_prefetch_range(vectors + Int(candidates[i]) * dimension, dimension * 4) }
                for i in 0..<n {
                    let row = candidates[i]
                    found.push(distance(query, vectors + Int(row) * dimension), key(u.container, row))
                }
                cost.distances += n
            }
            switch codes {
            case .sq8(let sq8)?:
                let prepared = SQ8Query(query: query, quantizer: sq8.quantizer, metric: metric,
                                        buffers: scratch.queryBuffers(dimension))
                reranked(SQ8RowDistance(query: prepared, codes: sq8.codes, kernels: tp_sq8_kernels()))
            case .f16(let f16)?:
                reranked(F16RowDistance(query: query, halves: f16.halves, dimension: dimension, usesDot: metric.usesDot,
                                        kernels: tp_f16_kernels()))
            case nil:
                cost.distances += graphSearch(F32RowDistance(query: query, vectors: vectors, distance: distance), depth: k) { d, row in
                    found.push(d, key(u.container, row))
                }
            }
            merge(found, u, vectors: vectors, dead: dead, visible: visible, into: &top, cost: &cost, scratch: scratch)
        }

        /// Moves an index search's results into `top`, or, when the index found fewer than k
        /// of the container's admissible rows (a filter or deletions cut it off), scans them all.
        func merge(_ found: TopK, _ u: (container: Int, start: Int, end: Int, kind: UnitKind), vectors: UnsafePointer<Float>,
                   dead: DeadFilter, visible: (UnsafeMutablePointer<UInt64>, UInt64)?,
                   into top: inout TopK, cost: inout SearchCost, scratch: SearchScratch) {
            let admissible = allowedCounts?[u.container] ?? u.end
            if found.items.count < k && admissible > found.items.count {
                cost.rowsScanned += u.end
                cost.distances += admissible
                if let allowed {
                    scanAllowed(query, vectors, allowed[u.container], start: 0, end: u.end, container: u.container,
                                dead: dead, visible: visible, into: &top)
                } else {
                    scan(query, vectors, start: 0, end: u.end, container: u.container, dead: dead,
                         visible: visible, into: &top, scratch: scratch)
                }
            } else {
                for it in found.items { top.push(it.dist, it.key) }
            }
        }

        /// Scans the `nprobe` posting lists nearest the query; quantized lists keep their best
        /// `rerank` candidates and re-score them with f32. Falls back to an exact scan when the
        /// probed lists hold fewer than k admissible rows (a selective filter, many deletions).
        func ivfSearch(_ s: Segment, _ ivf: IVFView, _ u: (container: Int, start: Int, end: Int, kind: UnitKind),
                       dead: DeadFilter, into top: inout TopK, cost: inout SearchCost, scratch: SearchScratch) {
            let nprobe = min(ivf.nlist, options.nprobe ?? config.ivf.probes(nlist: ivf.nlist))
            let centroidDistances = scratch.floats(0, ivf.nlist)
            distance.batch(query, ivf.centroids, count: ivf.nlist, into: centroidDistances)
            var probes = TopK(k: nprobe)
            for i in 0..<ivf.nlist where centroidDistances[i] <= probes.threshold { probes.push(centroidDistances[i], UInt64(i)) }
            cost.listsProbed += nprobe
            let allowedWords = allowed?[u.container].words
            @inline(__always) func admit(_ row: UInt32) -> Bool {
                if dead.isDead(row) { return false }
                if let w = allowedWords { return w[Int(row) >> 6] & (1 << (UInt64(row) & 63)) != 0 }
                return true
            }
            var found = TopK(k: k)
            let rows = ivf.rowIDs, vectors = s.vectors
            if let rq = ivf.rabitq, let rc = ivf.rotatedCentroids, let factors = ivf.rabitqFactors, let codes = ivf.rabitqCodes {
                // Nearest lists first, so the k-th exact distance tightens early and the bound prunes more.
                let words = rq.words
                let rotatedQuery = scratch.floats(1, 2 * dimension)
                rq.rotate(query, into: rotatedQuery)
                let planes = scratch.words(4 * words)
                let sums = scratch.uints(0, ivf.maxListLength), pops = scratch.uints(1, ivf.maxListLength)
                let survivorRows = scratch.uints(2, ivf.maxListLength)
                let scan = tp_rabitq_kernel()!
                let estimatesLower = scratch.floats(2, ivf.maxListLength)
                let lowerBounds = tp_rabitq_lower_kernel()!
                for p in probes.items.sorted(by: { $0.dist < $1.dist }) {
                    let l = Int(p.key)
                    var prepared = rq.prepare(rotatedQuery: rotatedQuery, rotatedCentroid: rc + l * dimension, planes: planes,
                                              work: rotatedQuery + dimension)
                    if metric.usesDot { prepared.queryDotCentroid = -p.dist }   // the probe distance is −q·c
                    let list = ivf.list(l)
                    scan(codes + list.lowerBound * words, list.count, words, planes, sums, pops)
                    cost.quantizedDistances += list.count
                    // Rows whose lower bound beats the k-th exact distance so far; their f32 rows are
                    // prefetched together, then re-scored while the bound still beats the (tightening) k-th.
                    var survivors = 0
                    let threshold = found.threshold
                    lowerBounds(sums, pops, factors + list.lowerBound * RaBitQ.factorCount, list.count, prepared.delta,
                                prepared.lower, prepared.sum, 1 / Float(dimension).squareRoot(), prepared.queryNorm,
                                prepared.queryDotCentroid, metric.usesDot ? 1 : 0, estimatesLower)
                    for j in 0..<list.count where estimatesLower[j] < threshold {
                        let i = list.lowerBound + j
                        guard admit(rows[i]) else { continue }
                        let row = rows[i]
                        let lower = estimatesLower[j]
                        tp_prefetch_range(vectors + Int(row) * dimension, dimension * 4)
                        survivorRows[survivors] = row
                        estimatesLower[survivors] = lower   // survivors ≤ j: overwrites only entries already read
                        survivors += 1
                    }
                    for s in 0..<survivors where estimatesLower[s] < found.threshold {
                        let row = survivorRows[s]
                        cost.distances += 1
                        found.push(distance(query, vectors + Int(row) * dimension), key(u.container, row))
                    }
                }
            } else if ivf.codec == .flat {
                for p in probes.items {
                    let list = ivf.list(Int(p.key))
                    for i in list {
                        if i + 4 < list.upperBound { tp_prefetch_range(vectors + Int(rows[i + 4]) * dimension, dimension * 4) }
                        let row = rows[i]
                        guard admit(row) else { continue }
                        cost.distances += 1
                        found.push(distance(query, vectors + Int(row) * dimension), key(u.container, row))
                    }
                }
            } else {
                // Default 4·k (at least 40), as FAISS's IndexRefineFlat k_factor 4: residual PQ ranks
                // well enough that 100 re-scored rows gave under 0.001 more recall than 40 (1M × 128
                // and pypi) while each costs a cache miss on the f32 rows.
                let depth = max(options.rerank ?? max(4 * k, 40), k)
                // The best `depth` estimates, in a max-heap over the scratch (no allocation).
                let heap = scratch.resultHeap(depth)
                var candidates = MaxHeap(storage: heap, capacity: depth)
                @inline(__always) func offer(_ d: Float, _ row: UInt32) {
                    if candidates.count < depth {
                        candidates.push(Neighbor(dist: d, id: row))
                    } else if d < candidates.top.dist {
                        candidates.replaceTop(Neighbor(dist: d, id: row))
                    }
                }
                if let pq = ivf.pq, let codes = ivf.pqCodes {
                    // Codes are residuals to the list centroid. Inner products split as q·c + q·r, so
                    // one table serves every list, offset by the list's centroid term (its probe
                    // distance, −q·c); squared L2 needs the table of q − c, one per list.
                    // Fast-scan sections (codes in blocks of 64) quantize the table to bytes and sum
                    // a block by byte lookups: estimate = bias + step · sum, ranked only to pick the
                    // rows to re-score; list-order sections sum the float table.
                    let blockStarts = ivf.pqBlockStarts
                    let table = scratch.floats(1, pq.m * 257)
                    let mins = table + pq.m * 256
                    let bytes = UnsafeMutableRawPointer(scratch.uints(0, pq.m * 64)).bindMemory(to: UInt8.self, capacity: pq.m * 256)
                    let sums = UnsafeMutableRawPointer(scratch.uints(1, ivf.maxListLength / 2 + 64))
                        .bindMemory(to: UInt16.self, capacity: ivf.maxListLength + 128)
                    let estimates = scratch.floats(2, ivf.maxListLength)
                    let residual = scratch.queryBuffers(dimension).0
                    let tableL2 = tp_pq_table_l2_kernel()!, quantize = tp_pq_quantize_kernel()!, scanBlocks = tp_pq_scan_blocked_kernel()!
                    var step: Float = 1, tableBias: Float = 0
                    if metric.usesDot {
                        pq.dotTable(query, into: table)
                        if blockStarts != nil { step = quantize(table, pq.m, mins, bytes, &tableBias) }
                    }
                    for p in probes.items {
                        let l = Int(p.key)
                        var bias: Float = 0
                        if metric.usesDot {
                            bias = p.dist
                        } else {
                            let c = ivf.centroids + l * dimension
                            for d in 0..<dimension { residual[d] = query[d] - c[d] }
                            pq.tableL2(residual, into: table, kernel: tableL2)
                            if blockStarts != nil { step = quantize(table, pq.m, mins, bytes, &tableBias) }
                        }
                        let list = ivf.list(l)
                        if let starts = blockStarts {
                            scanBlocks(codes + starts[l], (list.count + IVFFormat.pqBlock - 1) / IVFFormat.pqBlock, pq.m, bytes, sums)
                            for j in 0..<list.count { estimates[j] = tableBias + step * Float(sums[j]) }
                        } else {
                            tp_pq_scan(codes + list.lowerBound * pq.m, list.count, pq.m, table, estimates)
                        }
                        cost.quantizedDistances += list.count
                        for j in 0..<list.count where candidates.count < depth || estimates[j] + bias < candidates.top.dist {
                            let row = rows[list.lowerBound + j]
                            if admit(row) { offer(estimates[j] + bias, row) }
                        }
                    }
                } else if let sq8 = ivf.sq8 {
                    let prepared = SQ8Query(query: query, quantizer: sq8.quantizer, metric: metric,
                                            buffers: scratch.queryBuffers(dimension))
                    let estimate = SQ8RowDistance(query: prepared, codes: sq8.codes, kernels: tp_sq8_kernels())
                    for p in probes.items {
                        for i in ivf.list(Int(p.key)) {
                            let row = rows[i]
                            guard admit(row) else { continue }
                            cost.quantizedDistances += 1
                            offer(estimate(UInt32(i)), row)
                        }
                    }
                }
                let n = candidates.count
                for i in 0..<n { tp_prefetch_range(vectors + Int(heap[i].id) * dimension, dimension * 4) }
                for i in 0..<n {
                    let row = heap[i].id
                    found.push(distance(query, vectors + Int(row) * dimension), key(u.container, row))
                }
                cost.distances += n
            }
            merge(found, u, vectors: vectors, dead: dead, visible: nil, into: &top, cost: &cost, scratch: scratch)
        }

        func run(_ range: StrideTo<Int>, into top: inout TopK, cost: inout SearchCost, scratch: SearchScratch) {
            for u in range.map({ units[$0] }) {
                let vectors: UnsafePointer<Float>, dead: DeadFilter, visible: (UnsafeMutablePointer<UInt64>, UInt64)?
                if u.container < snap.segments.count {
                    let s = snap.segments[u.container]
                    vectors = s.vectors
                    dead = DeadFilter(s.tombstones, visibleSeq: snap.visibleSeq)
                    visible = nil
                    if u.kind == .graph, let g = s.graph {
                        walk(g, entry: (g.entryPoint, g.maxLevel), nodes: g.count, u, vectors: vectors, codes: s.codes, dead: dead,
                             visible: nil, into: &top, cost: &cost, scratch: scratch)
                        continue
                    }
                    if u.kind == .ivf, let v = s.ivf {
                        ivfSearch(s, v, u, dead: dead, into: &top, cost: &cost, scratch: scratch)
                        continue
                    }
                } else {
                    let (m, _) = snap.memtables[u.container - snap.segments.count]
                    vectors = UnsafePointer(m.vectors)
                    dead = DeadFilter(m.tombstones, visibleSeq: snap.visibleSeq)
                    visible = (m.seqs, snap.visibleSeq)
                    if u.kind == .graph, let g = m.graph {
                        // The graph is still growing: rows at or past `u.end` may be linked already,
                        // and are walked through but never returned (the scan covers them).
                        walk(g, entry: g.entry(), nodes: g.count, u, vectors: vectors, codes: nil, dead: dead,
                             visible: visible, into: &top, cost: &cost, scratch: scratch)
                        continue
                    }
                }
                cost.rowsScanned += u.end - u.start
                if u.kind == .flatAllowed, let allowed {
                    cost.distances += allowed[u.container].count(in: u.start..<u.end)
                    scanAllowed(query, vectors, allowed[u.container], start: u.start, end: u.end, container: u.container,
                                dead: dead, visible: visible, into: &top)
                } else {
                    cost.distances += u.end - u.start
                    scan(query, vectors, start: u.start, end: u.end, container: u.container, dead: dead,
                         visible: visible, into: &top, scratch: scratch)
                }
            }
        }

        if threads <= 1 {
            var top = TopK(k: k)
            ScratchPool.shared.withScratch { run(stride(from: 0, to: units.count, by: 1), into: &top, cost: &cost, scratch: $0) }
            return top
        }
        let partials = Locked<[(TopK, SearchCost)]>([])
        // The closure only reads the snapshot and query, which outlive the call.
        nonisolated(unsafe) let runUnits = run
        let unitCount = units.count
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var top = TopK(k: k)
            var partCost = SearchCost()
            ScratchPool.shared.withScratch { runUnits(stride(from: t, to: unitCount, by: threads), &top, &partCost, $0) }
            partials.withLock { $0.append((top, partCost)) }
        }
        var merged = TopK(k: k)
        for (p, c) in partials.withLock({ $0 }) {
            for it in p.items { merged.push(it.dist, it.key) }
            cost.add(c)
        }
        return merged
    }

    /// Per container of the snapshot (segments, then memtables), the rows `filter` admits.
    func allowedRows(_ snap: Snapshot, _ filter: Filter) throws -> [Bitmap] {
        var out: [Bitmap] = []
        out.reserveCapacity(snap.segments.count + snap.memtables.count)
        for s in snap.segments { out.append(try s.allowedRows(filter)) }
        for (m, n) in snap.memtables {
            var b = Bitmap(count: n)
            for r in 0..<n where filter.matches(m.attributes[r]) { b.insert(r) }
            out.append(b)
        }
        return out
    }

    /// Exact scan of the allowed rows in `start..<end`.
    private func scanAllowed(_ q: UnsafePointer<Float>, _ vectors: UnsafePointer<Float>, _ allowed: Bitmap, start: Int, end: Int,
                             container: Int, dead: DeadFilter, visible: (UnsafeMutablePointer<UInt64>, UInt64)?,
                             into top: inout TopK) {
        var threshold = top.threshold
        allowed.words.withUnsafeBufferPointer { words in
            var wi = start >> 6
            while wi < words.count && wi << 6 < end {
                var w = words[wi]
                while w != 0 {
                    let row = wi << 6 | w.trailingZeroBitCount
                    w &= w - 1
                    if row < start || row >= end { continue }
                    if dead.isDead(UInt32(row)) { continue }
                    if let (seqs, vis) = visible, seqs[row] > vis { continue }
                    let d = distance(q, vectors + row * dimension)
                    if d <= threshold {
                        top.push(d, key(container, UInt32(row)))
                        threshold = top.threshold
                    }
                }
                wi += 1
            }
        }
    }

    /// Exact scan of rows `start..<end` of a vector block, in batches through the SIMD batch kernel.
    private func scan(_ q: UnsafePointer<Float>, _ vectors: UnsafePointer<Float>, start: Int, end: Int, container: Int,
                      dead: DeadFilter, visible: (UnsafeMutablePointer<UInt64>, UInt64)?, into top: inout TopK,
                      scratch: SearchScratch) {
        let buf = scratch.distanceBuffer
        var a = start
        while a < end {
            let n = min(SearchScratch.distanceBufferCapacity, end - a)
            distance.batch(q, vectors + a * dimension, count: n, into: buf)
            var threshold = top.threshold
            for i in 0..<n where buf[i] <= threshold {
                let row = UInt32(a + i)
                if dead.isDead(row) { continue }
                if let (seqs, vis) = visible, seqs[a + i] > vis { continue }
                top.push(buf[i], key(container, row))
                threshold = top.threshold
            }
            a += n
        }
    }

    func resolve(_ top: TopK, snap: Snapshot, options: SearchOptions) throws -> [SearchHit] {
        try top.sorted().map { item in
            let c = Int(item.key >> 32), row = Int(item.key & 0xFFFF_FFFF)
            let dist = reportedDistance(item.dist, metric: metric)
            if c < snap.segments.count {
                let s = snap.segments[c]
                return SearchHit(id: try s.documentID(row), distance: dist,
                                 attributes: options.includeAttributes ? try s.attributes(row) : nil,
                                 vector: options.includeVectors ? s.vectorArray(row) : nil)
            }
            let (m, _) = snap.memtables[c - snap.segments.count]
            return SearchHit(id: m.ids[row], distance: dist,
                             attributes: options.includeAttributes ? m.attributes[row] : nil,
                             vector: options.includeVectors ? Array(UnsafeBufferPointer(start: m.vector(row), count: dimension)) : nil)
        }
    }

    // MARK: Introspection

    /// A description of the collection's storage.
    public func info() -> CollectionInfo {
        let snap = snapshot()
        let segs = snap.segments.map {
            CollectionInfo.SegmentInfo(id: $0.id, rows: $0.rowCount, deletedRows: $0.tombstones.deadCount(at: snap.visibleSeq),
                                       bytes: $0.byteCount, hasGraph: $0.graph != nil,
                                       vectorBytes: $0.sectionLength(.vectors), graphBytes: $0.sectionLength(.hnsw),
                                       codeBytes: $0.sectionLength(.sq8) + $0.sectionLength(.f16),
                                       index: $0.graph != nil ? "hnsw" : ($0.ivf != nil ? "ivf" : "flat"),
                                       ivfBytes: $0.sectionLength(.ivf), ivfReadsVectors: $0.ivf?.codec == .flat,
                                       ivfLists: $0.ivf?.nlist ?? 0, graphMeanDegree: $0.graph?.meanDegree ?? 0)
        }
        let walBytes = ((try? storage.list(folder + "/wal")) ?? []).reduce(0) { $0 + ((try? storage.size(of: folder + "/wal/" + $1)) ?? 0) }
        return CollectionInfo(name: name, dimension: dimension, metric: metric, count: count, segments: segs,
                              memtableRows: snap.memtables.reduce(0) { $0 + $1.1 },
                              memtableIndexedRows: snap.memIndexed.reduce(0, +), walBytes: walBytes,
                              flushedSeq: state.withLock { flushedSeq }, lastSeq: snap.visibleSeq)
    }

    /// Checks invariants beyond checksums: every live id maps to one live row and back.
    func checkInvariants() throws -> [String] {
        var problems: [String] = []
        let snap = snapshot()
        var seen = Set<DocumentID>()
        for s in snap.segments {
            try s.verifyChecksums()
            for r in 0..<s.rowCount {
                let t = s.tombstones.seq(r)
                if t != 0 && t <= snap.visibleSeq { continue }
                let id = try s.documentID(r)
                if !seen.insert(id).inserted { problems.append("collection '\(name)': id \(id) is live in two rows") }
            }
        }
        for (m, n) in snap.memtables {
            for r in 0..<n where m.tombstones.seq(r) == 0 {
                if !seen.insert(m.ids[r]).inserted { problems.append("collection '\(name)': id \(m.ids[r]) is live in two rows") }
            }
        }
        if seen.count != count { problems.append("collection '\(name)': \(seen.count) live rows but \(count) ids") }
        return problems
    }
}

/// A description of a collection's storage, for `inspect`.
public struct CollectionInfo: Sendable, Codable {
    public struct SegmentInfo: Sendable, Codable {
        public var id: UInt64
        public var rows: Int
        public var deletedRows: Int
        public var bytes: Int
        public var hasGraph: Bool
        /// Bytes of full-precision vectors, of the graph, and of the compressed vectors the walk
        /// reads (SQ8 codes or f16; 0 when absent).
        public var vectorBytes: Int
        public var graphBytes: Int
        public var codeBytes: Int
        /// What a graph search keeps touching, so what should stay in memory: the graph and the
        /// vectors it walks (compressed ones when present, else f32; f32 rows are then read only to re-rank).
        /// "flat", "hnsw" or "ivf".
        public var index: String
        /// Bytes of the IVF section (centroids, lists, codes; 0 when absent).
        public var ivfBytes: Int
        /// Whether IVF lists hold row numbers only, so scans read the f32 vectors.
        public var ivfReadsVectors: Bool
        /// IVF posting lists (0 without IVF).
        public var ivfLists: Int
        /// Level-0 links per node on average (0 without a graph); at most 2·M.
        public var graphMeanDegree: Double
        /// What a search keeps touching, so what should stay in memory: the graph and the vectors
        /// it walks (compressed ones when present, else f32), or the IVF section (plus f32 for
        /// IVF-flat); f32 rows are otherwise read only to re-rank.
        public var searchResidentBytes: Int {
            if hasGraph { return graphBytes + (codeBytes > 0 ? codeBytes : vectorBytes) }
            if ivfBytes > 0 { return ivfBytes + (ivfReadsVectors ? vectorBytes : 0) }
            return vectorBytes
        }
    }
    public var name: String
    public var dimension: Int
    public var metric: Metric
    public var count: Int
    public var segments: [SegmentInfo]
    public var memtableRows: Int
    /// In-memory rows already in their memtable's graph (the rest are scanned exactly).
    public var memtableIndexedRows: Int
    public var walBytes: Int
    public var flushedSeq: UInt64
    public var lastSeq: UInt64
}
