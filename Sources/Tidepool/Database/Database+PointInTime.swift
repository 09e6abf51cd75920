import Foundation

/// Point-in-time restore: a kept version, plus the logged operations after it up to a chosen
/// sequence number, committed together as one new version. The log is kept from the oldest
/// kept version on for this (`Collection.logCutoff`).
extension Database {
    /// Restores collection `name` to its state right after operation `sequence` (the numbers
    /// `Collection.info().lastSeq` reports): the newest kept version at or before it, with the
    /// logged operations after that version up to `sequence` written into a new segment and
    /// the rows they replaced or deleted marked deleted, all committed as one new version: a
    /// crash leaves the old state or the new one, nothing between. Writes after `sequence` are
    /// undone (they stay in the versions between). A restore counts as made right after the
    /// sequence number it was made at. `notFound` when no kept version is at or before
    /// `sequence`, when the log after it is no longer kept, or when a restore since that
    /// version committed a version that is no longer kept. Returns the new version's number.
    @discardableResult
    public func restoreCollection(_ name: String, toSequence sequence: UInt64) throws -> UInt64 {
        try refuseIfReadOnly("restore collection '\(name)'")
        restoreLock.lock()
        defer { restoreLock.unlock() }
        let old = try collection(name)
        let last = old.lastSequence
        guard sequence <= last else {
            throw TidepoolError.invalidArgument("collection '\(name)' has logged operations up to \(last), not \(sequence)")
        }
        let base = try baseVersion(of: old, at: sequence)
        let (upserts, touched) = try loggedChanges(of: old, after: base.entry.flushedSeq, upTo: sequence)
        let version = try replaceState(of: old) { _, nextID in
            try stateAfter(base, upserts: upserts, touched: touched, collection: old, segmentID: nextID, sequence: sequence)
        }
        options.logger.info(
            "collection '\(name)': restored to sequence \(sequence) (version \(base.number) and \(touched.count) documents changed after it) as version \(version)"
        )
        return version
    }

    /// The newest kept version at or before `sequence` (the highest number among those with the
    /// same flushed sequence: a restore's state supersedes the one it replaced).
    private func baseVersion(of c: Collection, at sequence: UInt64) throws -> VersionRecord {
        let records = try c.keptVersionRecords()
        guard
            let base = records.values.filter({ $0.entry.flushedSeq <= sequence }).max(by: {
                ($0.entry.flushedSeq, $0.number) < ($1.entry.flushedSeq, $1.number)
            })
        else {
            let oldest = records.values.map(\.entry.flushedSeq).min()
            throw TidepoolError.notFound(
                "collection '\(c.name)' keeps no version at or before sequence \(sequence)"
                    + (oldest.map { " (the oldest kept starts after sequence \($0))" } ?? ""))
        }
        let restores = lock.withLock { manifest.collections.first { $0.name == c.name }?.restores ?? [] }
        if let r = restores.first(where: { $0.seq >= base.entry.flushedSeq && $0.seq <= sequence && $0.version > base.number }) {
            throw TidepoolError.notFound(
                "collection '\(c.name)': a restore at sequence \(r.seq) committed version \(r.version), which is no longer kept; "
                    + "the log after version \(base.number) no longer leads to the state at \(sequence)")
        }
        return base
    }

    /// The documents the log's operations in (`after`, `upTo`] leave (the last write of each id
    /// wins), and every id they touched (deleted ones included).
    private func loggedChanges(of c: Collection, after: UInt64, upTo sequence: UInt64) throws -> (
        upserts: [DocumentID: Document], touched: Set<DocumentID>
    ) {
        var upserts: [DocumentID: Document] = [:]
        var touched = Set<DocumentID>()
        guard sequence > after else { return (upserts, touched) }
        let folder = c.folder + "/wal"
        let first = try storage.list(folder).compactMap(WALFormat.firstSeq(fromFileName:)).min()
        guard let first, first <= after + 1 else {
            throw TidepoolError.notFound(
                "collection '\(c.name)': the log after sequence \(after) is no longer kept, so sequence \(sequence) cannot be restored")
        }
        var reached = after
        _ = try WriteAheadLog.replay(
            storage: storage, folder: folder, dimension: c.dimension, afterSeq: after, readOnly: true, logger: options.logger
        ) { seq, op in
            guard seq <= sequence else { return }
            reached = seq
            switch op {
            case .upsert(let docs):
                for d in docs {
                    upserts[d.id] = d
                    touched.insert(d.id)
                }
            case .delete(let ids):
                for id in ids {
                    upserts[id] = nil
                    touched.insert(id)
                }
            }
        }
        guard reached == sequence else {
            throw TidepoolError.notFound("collection '\(c.name)': the log ends at sequence \(reached), before \(sequence)")
        }
        return (upserts, touched)
    }

    /// `base`'s state with the rows of `touched` ids deleted and `upserts` in a new segment.
    private func stateAfter(
        _ base: VersionRecord, upserts: [DocumentID: Document], touched: Set<DocumentID>, collection c: Collection,
        segmentID: UInt64, sequence: UInt64
    ) throws -> Manifest.CollectionEntry {
        try c.checkFilesPresent(base)  // it may have aged out before the collection closed
        var entry = base.entry
        guard !touched.isEmpty else { return entry }
        let view = VersionView(number: base.number, segments: try c.openSegments(of: base), flushedSeq: base.entry.flushedSeq)
        var deleted: [Int: [UInt32]] = [:]
        for id in touched {
            if let key = try view.row(of: id) { deleted[key.container, default: []].append(key.row) }
        }
        for (i, rows) in deleted {
            let s = entry.segments[i]
            // Inline: the next flush moves a long list to a file of its own.
            entry.segments[i].deleted = Array(Set(try c.loadDeletedRows(s, rowCount: s.rows) + rows)).sorted()
            entry.segments[i].deletedFile = nil
        }
        guard !upserts.isEmpty else { return entry }
        let docs = upserts.values.sorted { $0.id < $1.id }
        let dim = c.dimension
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: docs.count * dim)
        defer { buffer.deallocate() }
        var vectorless = Bitmap(count: docs.count)
        for (i, d) in docs.enumerated() {
            if d.hasVector {
                (buffer + i * dim).update(from: d.vector, count: dim)
            } else {
                (buffer + i * dim).update(repeating: 0, count: dim)
                vectorless.insert(i)
            }
        }
        let contents = SegmentContents(
            dimension: dim, metric: c.metric, rowCount: docs.count, vectors: buffer, ids: docs.map(\.id),
            attributes: docs.map(\.attributes), maxSeq: sequence, vectorless: vectorless.cardinality > 0 ? vectorless : nil)
        let builder = SegmentBuilder(
            storage: storage, folder: c.folder, dimension: dim, metric: c.metric, config: entry.config, buildThreads: options.buildThreads,
            memoryBudget: options.memoryBudget)
        let (seg, _) = try builder.write(contents, id: segmentID)
        entry.segments.append(
            Manifest.SegmentEntry(
                id: segmentID, file: SegmentFormat.fileName(id: segmentID), rows: seg.rowCount, bytes: seg.byteCount, deleted: []))
        entry.nextSegmentID = segmentID + 1
        return entry
    }
}
