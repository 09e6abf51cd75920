import Foundation
import Metrics

/// Memtables become segments, and segments merge: on the `background` queue, one job at a time.
/// Each job writes its segment file (durable), then swaps the manifest that names it, then
/// publishes the segment in memory; only then are log files and replaced segments deleted.
extension Collection {
    /// Writes everything in memory to a segment and waits for it (and any earlier flush) to finish.
    public func flush() throws {
        _ = try writableLog("flush")
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
        try flush()  // refuses a read-only collection
        var err: Error?
        background.sync {
            do { try self.timed("tidepool_compaction_duration") { try self.compactNow() } } catch { err = error }
        }
        if let err { throw err }
    }

    /// Queues what `compact` does and returns at once: the memtable is flushed and every segment
    /// merged into one in the background (`info()` shows one segment and an empty memtable when
    /// it is done; a failure shows in `health` and is retried, as for any background work).
    public func requestCompaction() throws {
        _ = try writableLog("compact")
        state.withLock {
            if active.count > 0 || visibleSeq > (frozen.last?.lastSeq ?? flushedSeq) { freezeActive() }
            compactionRequested = true
        }
        scheduleFlush()
    }

    /// Queues flushes of the frozen memtables, then a compaction if one is due (after `delay`
    /// seconds: a retry).
    func scheduleFlush(after delay: Double = 0) {
        let work: @Sendable () -> Void = { [weak self] in self?.runBackgroundWork() }
        if delay > 0 { background.asyncAfter(deadline: .now() + delay, execute: work) } else { background.async(execute: work) }
    }

    /// One round of background work. A failure never stops the process: it is logged, the
    /// collection reports it (`health`), reads go on, writes go on while memtables have room,
    /// and the round is retried with a growing delay (0.5 s doubling to 30 s) until it succeeds —
    /// when a full disk has room again, say.
    private func runBackgroundWork() {
        // A read-only collection writes nothing: its memtables stay in memory until it is
        // reopened (on object storage, a newer manifest from the writer replaces them).
        if wal == nil || state.withLock({ closed }) { return }
        collectRetiredFiles()
        do {
            while let m = state.withLock({ closed ? nil : frozen.first }) {
                try timed("tidepool_flush_duration") { try flushNow(m) }
            }
            if needsCompaction() { try timed("tidepool_compaction_duration") { try compactNow() } }
            state.withLock { compactionRequested = false }
            collectRetiredFiles()  // versions the round's commits pushed out of retention
            let recovered = state.withLock { () -> Bool in
                defer { backgroundError = nil; backgroundRetries = 0 }
                return backgroundError != nil
            }
            if recovered {
                logger.info("collection '\(name)': background flush and compaction work again")
                state.broadcast()
            }
        } catch {
            if state.withLock({ closed }) { return }  // dropped meanwhile: its work was abandoned
            let e = error as? TidepoolError ?? .io(path: folder, operation: "flush", errno: EIO)
            let delay = state.withLock { () -> Double in
                backgroundError = e
                backgroundRetries += 1
                return min(30, 0.25 * Double(1 << min(backgroundRetries, 8)))
            }
            logger.error("collection '\(name)': background flush or compaction failed (retrying in \(delay) s): \(e)")
            state.broadcast()
            scheduleFlush(after: delay)
        }
    }

    /// Records how long a flush or compaction took (swift-metrics timer, per collection).
    private func timed(_ label: String, _ body: () throws -> Void) rethrows {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        Timer(label: label, dimensions: [("collection", name)]).recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }

    /// Whether some segment was built under index settings other than the current ones.
    func segmentsOutOfDate() -> Bool {
        let (segs, cfg) = state.withLock { (segments, configValue) }
        return segs.contains {
            SegmentPlan(segment: $0) != SegmentPlan(rows: $0.rowCount, dimension: dimension, config: cfg, memoryBudget: memoryBudget?.limit)
        }
    }

    /// Too many segments (more than one when a compaction was requested), or a segment whose
    /// persisted deletions exceed a fifth of its rows.
    private func needsCompaction() -> Bool {
        let (segs, cutoff, requested) = state.withLock { (segments, flushedSeq, compactionRequested) }
        if segs.count > config.maxSegments || segmentsOutOfDate() || (requested && segs.count > 1) { return true }
        return segs.contains { $0.tombstones.deadCount(at: cutoff) * 5 > $0.rowCount }
    }

    private var segmentBuilder: SegmentBuilder {
        SegmentBuilder(
            storage: storage, folder: folder, dimension: dimension, metric: metric, config: config, buildThreads: buildThreads,
            memoryBudget: memoryBudget?.limit)
    }

    private func takeSegmentID() -> UInt64 {
        state.withLock { () -> UInt64 in
            defer { nextSegmentID += 1 }; return nextSegmentID
        }
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
        let vectorRows = m.count - (m.vectorlessBitmap(rows: m.count)?.cardinality ?? 0)
        if case .hnsw = SegmentPlan(rows: vectorRows, dimension: dimension, config: config, memoryBudget: memoryBudget?.limit) {
            plansGraph = true
        } else {
            plansGraph = false
        }
        let reuseGraph = m.hasGraph && plansGraph && !keep.isEmpty && (m.count - keep.count) * 10 <= m.count
        if reuseGraph {
            try m.index(upTo: m.count, threads: buildThreads)
            keep = Array(0..<m.count)
        }
        var written: (Segment, MovedRows)?
        if !keep.isEmpty {
            let segID = takeSegmentID()
            let contiguous = keep.count == m.count
            let buffer: UnsafeMutablePointer<Float> = contiguous ? m.vectors : .allocate(capacity: keep.count * dimension)
            defer { if !contiguous { buffer.deallocate() } }
            if !contiguous {
                for (i, r) in keep.enumerated() { (buffer + i * dimension).update(from: m.vector(r), count: dimension) }
            }
            let vectorless =
                m.hasVectorlessRows
                ? Bitmap(count: keep.count, rows: keep.indices.lazy.filter { !m.hasVector(keep[$0]) }.map(UInt32.init)) : nil
            let contents = SegmentContents(
                dimension: dimension, metric: metric, rowCount: keep.count, vectors: buffer,
                ids: keep.map { m.ids[$0] }, attributes: keep.map { m.attributes[$0] }, maxSeq: cutoff, vectorless: vectorless)
            let (seg, order) = try segmentBuilder.write(contents, id: segID, graph: reuseGraph ? m.graph : nil)
            try memoryBudget?.place(seg)
            var moved = MovedRows(keep.map { MovedRows.Source(container: m.containerID, tombstones: m.tombstones, row: $0) })
            moved.reorder(order)
            // Deletions persisted by this flush go into the manifest with it.
            moved.carryTombstones(into: seg, upTo: cutoff)
            written = (seg, moved)
        }
        // Publish: manifest first (durable), then memory.
        let current = state.withLock { segments }
        try commitVersion(try entryWritingDeletedRows(segments: current + (written.map { [$0.0] } ?? []), flushedSeq: cutoff))
        state.lock()
        if let (seg, moved) = written {
            moved.carryTombstones(into: seg)
            moved.remap(&idMap, to: seg) { m.ids[moved.sources[$0].row] }
            segments.append(seg)
            segmentsByID[seg.id] = seg
        }
        frozen.removeFirst()
        memtablesByID[m.containerID] = nil
        flushedSeq = cutoff
        let caughtUp = frozen.isEmpty
        state.unlock()
        state.broadcast()
        if caughtUp { wal?.rotateIfIdle() }
        wal?.deleteFiles(upTo: logCutoff(cutoff))
    }

    /// Merges every segment into one. Runs on `background` only.
    func compactNow() throws {
        // A collection closed for a restore writes nothing more (its next segment id may be the restore's).
        if state.withLock({ closed }) { throw TidepoolError.closed("collection '\(name)' was closed (replaced by a restore)") }
        let (olds, cutoff) = state.withLock { (segments, flushedSeq) }
        guard olds.count > 1 || olds.contains(where: { $0.tombstones.deadCount(at: cutoff) > 0 }) || segmentsOutOfDate() else { return }
        // Rows whose deletion is already persisted (at or below the flushed sequence) are dropped;
        // later deletions are carried over as tombstones, as the WAL still holds them.
        var sources: [(Segment, Int)] = []
        for s in olds {
            try s.awaitVectors()  // a writer that opened on a cold cache may still be fetching rows
            for r in 0..<s.rowCount {
                let t = s.tombstones.seq(r)
                if t == 0 || t > cutoff { sources.append((s, r)) }
            }
        }
        var written: (Segment, MovedRows)?
        if !sources.isEmpty {
            let segID = takeSegmentID()
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: sources.count * dimension)
            defer { buffer.deallocate() }
            var ids: [DocumentID] = []
            var attrs: [[String: AttributeValue]] = []
            var vectorless = Bitmap(count: sources.count)
            ids.reserveCapacity(sources.count)
            attrs.reserveCapacity(sources.count)
            for (i, (s, r)) in sources.enumerated() {
                (buffer + i * dimension).update(from: s.vector(r), count: dimension)
                ids.append(try s.documentID(r))
                attrs.append(try s.attributes(r))
                if s.vectorless?.contains(r) == true { vectorless.insert(i) }
            }
            let contents = SegmentContents(
                dimension: dimension, metric: metric, rowCount: sources.count, vectors: buffer,
                ids: ids, attributes: attrs, maxSeq: olds.map(\.maxSeq).max() ?? 0,
                vectorless: vectorless.cardinality > 0 ? vectorless : nil)
            let (seg, order) = try segmentBuilder.write(contents, id: segID)
            try memoryBudget?.place(seg)
            var moved = MovedRows(sources.map { MovedRows.Source(container: $0.0.id, tombstones: $0.0.tombstones, row: $0.1) })
            moved.reorder(order)
            written = (seg, moved)
        }
        var commit = try entryWritingDeletedRows(segments: written.map { [$0.0] } ?? [], flushedSeq: cutoff)
        // The replaced files stay while a kept version (or, on object storage, a reader of an
        // older manifest) may read them; `collectRetiredFiles` deletes them after.
        let now = Date().timeIntervalSince1970
        let retiring = olds.map { Manifest.RetiredFile(file: SegmentFormat.fileName(id: $0.id), generation: 0, time: now) }
        commit.entry.retired = (commit.entry.retired ?? []) + retiring
        try commitVersion(commit)
        state.lock()
        let oldIDs = Set(olds.map(\.id))
        if let (seg, moved) = written {
            moved.carryTombstones(into: seg)
            moved.remap(&idMap, to: seg) { try? seg.documentID($0) }
            segmentsByID[seg.id] = seg
        }
        segments.removeAll { oldIDs.contains($0.id) }
        if let (seg, _) = written { segments.insert(seg, at: 0) }
        for id in oldIDs { segmentsByID[id] = nil }
        state.unlock()
        // Open snapshots keep their mappings; unlinking a mapped file is safe.
        collectRetiredFiles()
    }

    /// The manifest's entry for this collection with `segs` as its segments.
    func manifestEntry(segments segs: [Segment], flushedSeq: UInt64) -> Manifest.CollectionEntry {
        Manifest.CollectionEntry(
            name: name, dimension: dimension, metric: metric, config: config, flushedSeq: flushedSeq,
            nextSegmentID: state.withLock { nextSegmentID },
            segments: segs.map {
                Manifest.SegmentEntry(
                    id: $0.id, file: SegmentFormat.fileName(id: $0.id), rows: $0.rowCount,
                    bytes: $0.byteCount, deleted: $0.tombstones.deletedRows(upTo: flushedSeq))
            }, schema: schema.types, retired: state.withLock { retired.isEmpty ? nil : retired },
            snapshots: state.withLock { snapshotPins.isEmpty ? nil : snapshotPins })
    }
}
