extension Collection {
    /// Opening: the manifest's segments with their persisted tombstones, the id map built from
    /// their live rows, the log replayed past the last flush, a new log file started, flushed log
    /// files and segment files the manifest does not list removed; then any flush, rebuild or
    /// indexing an interrupted run left to do is scheduled.
    func recover(_ entry: Manifest.CollectionEntry, options: DatabaseOptions) throws {
        for s in entry.segments {
            let seg = try Segment(
                id: s.id, name: folder + "/segments/" + s.file, storage: storage,
                dimension: dimension, metric: metric, verifyChecksums: options.verifyChecksumsOnOpen)
            guard seg.rowCount == s.rows else {
                throw TidepoolError.corrupt(file: seg.path, offset: 0, reason: "segment has \(seg.rowCount) rows, manifest says \(s.rows)")
            }
            for r in s.deleted {
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
            afterSeq: flushedSeq, readOnly: options.readOnly, logger: logger
        ) { seq, op in
            applyLocked(op, seq: seq)
        }
        // Read-only: the replayed state is served as it is; nothing is written, cut or removed.
        guard !options.readOnly else { return }
        let log = try WriteAheadLog(
            storage: storage, folder: folder + "/wal", dimension: dimension, collection: name,
            policy: options.syncPolicy, syncInterval: options.syncInterval, lastSeq: replayed, logger: logger)
        log.apply = { [unowned self] batch in self.applyBatch(batch) }
        log.deleteFiles(upTo: flushedSeq)
        wal = log
        removeOrphanSegments(entry)
        // A crash may have come between a settings change and the rebuild it asks for.
        if !frozen.isEmpty || segmentsOutOfDate() { scheduleFlush() }
        state.withLock { scheduleIndexingLocked() }
    }

    /// Segment files the manifest does not list: left by a flush or compaction that crashed
    /// before its manifest swap, or by one that replaced them.
    private func removeOrphanSegments(_ entry: Manifest.CollectionEntry) {
        let live = Set(entry.segments.map(\.file))
        for f in (try? storage.list(folder + "/segments")) ?? [] where !live.contains(f) {
            logger.info("removing orphan segment file \(folder)/segments/\(f)")
            try? storage.delete(folder + "/segments/" + f)
        }
    }
}
