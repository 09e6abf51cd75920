import Foundation

extension Collection {
    /// Deletes what nothing may read any more, on the writer: first the records of versions
    /// retention no longer keeps (never the current one or a snapshot's), then the segment and
    /// deleted-rows files compactions and flushes replaced, once no kept version names them and,
    /// on object storage, `storage.garbageGrace` has passed since they were retired and the
    /// manifest has moved `retainedManifestGenerations` past the first version without them (query
    /// nodes may read older manifests). A file the current state uses is never deleted, nor
    /// any file while a version record cannot be read (damage is reported, not guessed past).
    /// The deleted files leave the manifest with its next commit (deleting is idempotent, so a
    /// crash before that only deletes again).
    func collectRetiredFiles() {
        guard wal != nil, let catalog = catalog else { return }
        let now = Date().timeIntervalSince1970
        let grace = storage.garbageGrace.inSeconds
        let generation = catalog.manifestGeneration
        let kept: [UInt64: VersionRecord]
        do {
            kept = try expireVersions(now: now)
        } catch {
            logger.warning("collection '\(name)': version records cannot be read, so no replaced file is deleted: \(error)")
            return
        }
        let (due, live): ([Manifest.RetiredFile], Set<String>) = state.withLock {
            (
                retired.filter { now - $0.time >= grace && generation >= $0.generation + storage.retainedManifestGenerations },
                Set(segments.map { SegmentFormat.fileName(id: $0.id) } + deletedRowFiles.values.map(\.file))
                    .union(kept.values.flatMap(\.entry.files))
            )
        }
        var deleted = Set<String>()
        for f in due where !live.contains(f.file) {
            do {
                try storage.delete(folder + "/segments/" + f.file)
                deleted.insert(f.file)
                logger.info("collection '\(name)': deleted \(f.file), replaced at manifest generation \(f.generation)")
            } catch {
                logger.warning("collection '\(name)': deleting retired \(f.file) failed (retried later): \(error)")
            }
        }
        if !deleted.isEmpty { state.withLock { retired.removeAll { deleted.contains($0.file) } } }
        // Look again when the next file's grace period ends, or the next version ages out.
        let next = state.withLock { () -> Double? in
            let graces = retired.filter { generation >= $0.generation + storage.retainedManifestGenerations }.map { $0.time + grace - now }
            let ages = kept.values.map { $0.time + retention.keepFor.inSeconds - now }
            return (graces + (retired.isEmpty ? [] : ages)).filter { $0 > 0 }.min()
        }
        if let next { scheduleFlush(after: next + 0.5) }
    }

    /// Deletes the records of versions retention no longer keeps; returns the kept ones.
    private func expireVersions(now: Double) throws -> [UInt64: VersionRecord] {
        let records = try keptVersionRecords()
        let (current, pinned) = state.withLock { (versionNumber, Set(snapshotPins.map(\.version))) }
        let newest = Set(records.keys.sorted(by: >).prefix(retention.keepLast))
        let maxAge = retention.keepFor.inSeconds
        var kept = records
        for (n, r) in records where n != current && !pinned.contains(n) && !newest.contains(n) && now - r.time >= maxAge {
            do {
                try storage.delete(versionRecordName(n))
                kept[n] = nil
            } catch {
                logger.warning("collection '\(name)': deleting the record of version \(n) failed (retried later): \(error)")
            }
        }
        if kept.count != records.count {
            state.withLock {
                versionRecords = versionRecords?.filter { kept[$0.key] != nil }
                versionViews.removeAll { kept[$0.number] == nil }
            }
            // The log before the oldest kept version is no longer needed by a restore either.
            wal?.deleteFiles(upTo: logCutoff(state.withLock { flushedSeq }))
        }
        return kept
    }
}

extension Collection {
    /// How far the log may be deleted after a flush up to `flushed`: no further than the oldest
    /// kept version, so that a restore can replay it from that version to any later sequence
    /// number (`Database.restoreCollection(_:toSequence:)`). Nothing while a version record
    /// cannot be read.
    /// Versions kept only because a snapshot pins them do not hold the log: a snapshot would
    /// otherwise keep every write made after it.
    func logCutoff(_ flushed: UInt64) -> UInt64 {
        guard let records = try? keptVersionRecords() else { return 0 }
        let now = Date().timeIntervalSince1970
        let newest = Set(records.keys.sorted(by: >).prefix(retention.keepLast))
        let byRetention = records.values.filter { newest.contains($0.number) || now - $0.time < retention.keepFor.inSeconds }
        return min(flushed, byRetention.map(\.entry.flushedSeq).min() ?? flushed)
    }
}
