import Foundation

/// Restores and branches: the operations on versions that replace or add a collection.
extension Database {
    /// Makes a kept version of a collection current again, as a new version: its segments and
    /// deletions become the collection's, writes made after it are undone (they stay in older
    /// versions), nothing is rewritten. Returns the new version's number.
    ///
    /// The collection is closed and reopened around the commit: a write that races the restore
    /// either lands before it (and is undone with the rest) or fails with `closed`.
    @discardableResult
    public func restoreCollection(_ name: String, to selector: VersionSelector) throws -> UInt64 {
        try refuseIfReadOnly("restore collection '\(name)'")
        restoreLock.lock()
        defer { restoreLock.unlock() }
        let old = try collection(name)
        let record = try old.versionRecord(selector)
        let version = try replaceState(of: old) { _, _ in
            try old.checkFilesPresent(record)  // it may have aged out before the collection closed
            return record.entry
        }
        options.logger.info("collection '\(name)': restored version \(record.number) as version \(version)")
        return version
    }

    /// Closes `old`, commits the state `build` makes (given the log's last sequence number and the
    /// next free segment id) as its next version, and opens it in its place. The state's
    /// segments and deletions are `build`'s; the rest is the collection's: the log up to its
    /// last sequence number is never replayed (it is undone), later segment ids stay unused (no
    /// kept version's file is written over), snapshots stay, the files the old state used and
    /// the new one does not are retired, and the restore is remembered as a point where the log
    /// stops describing the state (`CollectionEntry.restores`). Returns the new version's number.
    func replaceState(
        of old: Collection, _ build: (_ lastSeq: UInt64, _ nextSegmentID: UInt64) throws -> Manifest.CollectionEntry
    ) throws -> UInt64 {
        let name = old.name
        try old.closeForReplacement()
        guard let current = lock.withLock({ manifest.collections.first { $0.name == name } }) else {
            throw TidepoolError.collectionNotFound(name)
        }
        let lastSeq = max(current.flushedSeq, old.lastSequence)
        let committed: Manifest.CollectionEntry
        do {
            var entry = try build(lastSeq, max(current.nextSegmentID, old.nextID))
            let restored = Set(entry.files)
            entry.name = name
            entry.flushedSeq = lastSeq
            entry.nextSegmentID = max(current.nextSegmentID, old.nextID, entry.nextSegmentID)
            entry.snapshots = current.snapshots
            entry.schema = (current.schema ?? [:]).merging(entry.schema ?? [:]) { a, _ in a }
            // Restore points before every kept version can no longer matter to a restore.
            let oldest = (try? old.keptVersionRecords())?.values.map(\.entry.flushedSeq).min() ?? 0
            let point = Manifest.RestorePoint(seq: lastSeq, version: (current.version ?? 0) + 1)
            entry.restores = (current.restores ?? []).filter { $0.seq >= oldest } + [point]
            let now = Date().timeIntervalSince1970
            entry.retired =
                (current.retired ?? []).filter { !restored.contains($0.file) }
                + current.files.filter { !restored.contains($0) }.map { Manifest.RetiredFile(file: $0, generation: 0, time: now) }
            committed = try persist(collection: entry)
        } catch {
            reopen(current, replacing: old)
            throw error
        }
        reopen(committed, replacing: old)
        return committed.version ?? 0
    }

    /// Opens `entry` in place of a closed collection; a failure is kept as the collection's error.
    private func reopen(_ entry: Manifest.CollectionEntry, replacing old: Collection) {
        do {
            let c = try Collection(catalog: self, entry: entry, storage: storage, options: options)
            lock.withLock { if open[entry.name] === old { open[entry.name] = c } }
        } catch {
            let e = error as? TidepoolError ?? .io(path: storage.displayPath("collections/" + entry.name), operation: "open", errno: EIO)
            options.logger.error("collection '\(entry.name)' cannot be opened after a restore: \(e)")
            lock.withLock {
                open[entry.name] = nil
                failed[entry.name] = e
            }
        }
    }

    /// Creates collection `name` as a branch of `source`: a copy-on-write clone that shares every
    /// file with the source (hard links in a local directory, so nothing is copied; object
    /// storage copies each file) and diverges from there: writes to either never show in the
    /// other. Without `selector` it starts from everything written to the source so far (the
    /// source is flushed first); with one, from that kept version. The branch opens on its first
    /// use (like a database's open, that reads its segments' headers and builds its id map).
    @discardableResult
    public func createBranch(_ name: String, from source: String, at selector: VersionSelector? = nil) throws -> BranchReport {
        try refuseIfReadOnly("create branch '\(name)'")
        try Database.validateName(name)
        let start = ContinuousClock.now
        let src = try collection(source)
        let record = try src.versionRecord(selector ?? .version(try src.committedVersion()))
        try reserve(name)
        defer { release(name) }
        let folder = "collections/" + name
        try? storage.deleteFolder(folder)  // left by an interrupted branch or create: the manifest never named it
        // The files first: a crash before the manifest names them leaves an unnamed folder,
        // which the next open removes (only links to the source's files, or copies).
        var copied = 0
        for f in record.entry.files {
            copied += try storage.share(src.folder + "/segments/" + f, as: folder + "/segments/" + f)
        }
        if !record.entry.files.isEmpty {  // an empty source has no files, and the branch no folder yet
            try storage.syncFolder(folder + "/segments")
            try storage.syncFolder(folder)
            try storage.syncFolder("collections")
        }
        var entry = record.entry
        entry.name = name
        entry.retired = nil
        entry.snapshots = nil
        entry.version = 1
        entry.versionTime = Date().timeIntervalSince1970
        // Opened on first use, as any collection is at a database's open (checksums, id map): the
        // branch costs only this manifest commit; the first use writes its version record
        // (`mendCurrentVersionRecord`).
        let manifestBytes = try installCollection(entry, openNow: false)
        let seconds = (ContinuousClock.now - start).inSeconds
        options.logger.info("collection '\(name)': branched from '\(source)' version \(record.number) in \(seconds) s")
        return BranchReport(
            version: record.number, filesShared: record.entry.files.count, bytesWritten: manifestBytes,
            bytesCopied: copied, seconds: seconds)
    }
}

extension Database {
    /// Claims a name for a collection about to be made (its folder is written before the
    /// manifest names it): `collectionExists` when one has it or another maker claimed it.
    func reserve(_ name: String) throws {
        try lock.withLock {
            guard open[name] == nil, failed[name] == nil, !unopened.contains(name), !reserved.contains(name) else {
                throw TidepoolError.collectionExists(name)
            }
            reserved.insert(name)
        }
    }

    func release(_ name: String) { _ = lock.withLock { reserved.remove(name) } }
}

extension Collection {
    /// The log's last sequence number (the flushed one when the log is closed or absent).
    var lastSequence: UInt64 { wal?.lastSeq ?? state.withLock { flushedSeq } }
    var nextID: UInt64 { state.withLock { nextSegmentID } }

    /// The committed version's number, committing the current state as version 1 first when
    /// nothing was committed since versions began; flushes first, so it holds every write
    /// acknowledged before the call.
    func committedVersion() throws -> UInt64 {
        try flush()
        var result: Result<UInt64, Error> = .success(0)
        background.sync {
            result = Result {
                let (segs, cutoff, current) = state.withLock { (segments, flushedSeq, versionNumber) }
                if current == 0 { try commitVersion(try entryWritingDeletedRows(segments: segs, flushedSeq: cutoff)) }
                return state.withLock { versionNumber }
            }
        }
        return try result.get()
    }
}
