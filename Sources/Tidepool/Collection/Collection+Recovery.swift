import Foundation

extension Collection {
    /// Opening: the manifest's segments with their persisted tombstones, the id map built from
    /// their live rows, the log replayed past the last flush, a new log file started, flushed log
    /// files and segment files the manifest does not list removed; then any flush, rebuild or
    /// indexing an interrupted run left to do is scheduled.
    func recover(_ entry: Manifest.CollectionEntry, options: DatabaseOptions) throws {
        // On object storage the log's listing and objects are fetched while the segments open.
        let early =
            storage.logsAreObjects
            ? WriteAheadLog.EarlyLogFetch(storage: storage, folder: folder + "/wal", afterSeq: entry.flushedSeq) : nil
        defer { _ = try? early?.files() }  // an opening that failed still lets the fetch finish first
        for s in entry.segments {
            let seg = try Segment(
                id: s.id, name: folder + "/segments/" + s.file, storage: storage,
                dimension: dimension, metric: metric, verifyChecksums: options.verifyChecksumsOnOpen, size: s.bytes,
                rows: s.rows)
            guard seg.rowCount == s.rows else {
                throw TidepoolError.corrupt(file: seg.path, offset: 0, reason: "segment has \(seg.rowCount) rows, manifest says \(s.rows)")
            }
            try memoryBudget?.place(seg)
            let deleted = try loadDeletedRows(s, rowCount: seg.rowCount)
            if let file = s.deletedFile { deletedRowFiles[s.id] = (file, deleted.count) }
            for r in deleted {
                guard Int(r) < seg.rowCount else {
                    throw TidepoolError.corrupt(
                        file: storage.manifestDisplayPath, offset: 0,
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

        // Replay the log past the last flush (single-threaded: nothing else sees the collection yet).
        let replayed = try WriteAheadLog.replay(
            storage: storage, folder: folder + "/wal", dimension: dimension,
            afterSeq: flushedSeq, readOnly: options.readOnly, logger: logger, early: early
        ) { seq, op in
            applyLocked(op, seq: seq)
        }
        // Read-only: the replayed state is served as it is; nothing is written, cut or removed.
        guard !options.readOnly else { return }
        // The replayed operations' objects count toward the next flush (at most one object each).
        if storage.logsAreObjects { logObjectsSinceFreeze = Int(clamping: replayed - flushedSeq) }
        let lastSeq = storage.logsAreObjects ? try claimNextLogObject(after: replayed) : replayed
        let log = try WriteAheadLog(
            storage: storage, folder: folder + "/wal", dimension: dimension, collection: name,
            policy: options.syncPolicy, syncInterval: options.syncInterval, lastSeq: lastSeq, logger: logger)
        log.apply = { [unowned self] batch in self.applyBatch(batch) }
        if storage.logsAreObjects {
            // Garbage only (replay skips them): the writer need not wait for the deletes.
            let flushed = flushedSeq
            if flushed > 0 { DispatchQueue.global(qos: .utility).async { [self] in log.deleteFiles(upTo: logCutoff(flushed)) } }
        } else {
            log.deleteFiles(upTo: logCutoff(flushedSeq))
        }
        wal = log
        removeOrphanSegments(entry)
        mendCurrentVersionRecord(entry)
        // A crash may have come between a settings change and the rebuild it asks for.
        if !frozen.isEmpty || segmentsOutOfDate() { scheduleFlush() }
        state.withLock { scheduleIndexingLocked() }
    }

    /// On object storage, a new writer fences the one before it: it creates the next WAL object
    /// itself, holding one operation that changes nothing. A predecessor that is only paused
    /// then loses its next create and acknowledges nothing more; a write of the predecessor that
    /// landed after replay listed the log (a PUT in flight when it died) takes the slot first,
    /// and is replayed before the next try. Returns the fence's sequence number.
    private func claimNextLogObject(after replayed: UInt64) throws -> UInt64 {
        var last = replayed
        for _ in 0..<10_000 {
            let seq = last + 1
            let name = folder + "/wal/" + WALFormat.fileName(firstSeq: seq)
            var bytes = WALFileHeader(dimension: dimension, firstSeq: seq).encoded()
            let fence = WALOperation.delete([])
            WALFormat.appendFrame(seq: seq, type: fence.typeCode, payload: WALFormat.encodePayload(fence, dimension: dimension), to: &bytes)
            let log = try storage.openAppendLog(name)
            try bytes.withUnsafeBytes { try log.append($0) }
            do {
                try log.sync()
                applyLocked(fence, seq: seq)
                return seq
            } catch TidepoolError.fenced {
                let mapped = try storage.map(name)
                let ops = try WriteAheadLog.operations(
                    in: mapped.bytes, file: storage.displayPath(name), expectedFirstSeq: seq, dimension: dimension, afterSeq: last)
                guard let end = ops.last?.seq else {
                    throw TidepoolError.corrupt(file: storage.displayPath(name), offset: 0, reason: "a WAL object with no operation")
                }
                logger.info(
                    "collection '\(self.name)': replaying \(storage.displayPath(name)), written by the previous writer after the log was listed"
                )
                for (s, op) in ops { applyLocked(op, seq: s) }
                last = end
            }
        }
        throw TidepoolError.fenced("collection '\(name)': another writer keeps taking the next WAL object; this one stops")
    }

    /// Segment files the manifest does not list: left by a flush or compaction that crashed
    /// before its manifest swap, or by one that replaced them.
    private func removeOrphanSegments(_ entry: Manifest.CollectionEntry) {
        // Retired files are collected after their grace period (`collectRetiredFiles`).
        let live = Set(entry.segments.map(\.file) + entry.segments.compactMap(\.deletedFile) + (entry.retired ?? []).map(\.file))
        for f in (try? storage.list(folder + "/segments")) ?? [] where !live.contains(f) {
            logger.info("removing orphan segment file \(folder)/segments/\(f)")
            try? storage.delete(folder + "/segments/" + f)
        }
    }
}
