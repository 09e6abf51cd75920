import Foundation

/// Versions: every commit of a collection's state (a flush, a compaction, a settings change, a
/// restore) is a version with a number and a time, recorded in `versions/<number>` beside the
/// segments. Reads can ask for a kept version (`SearchOptions.asOf`, `get(ids:asOf:)`,
/// `scan(…asOf:)`); `Database.restoreCollection` makes one current again; retention and
/// garbage collection are in `Collection+Garbage.swift`.
extension Collection {
    /// The number of the committed version (0: nothing committed since versions began).
    public var version: UInt64 { state.withLock { versionNumber } }

    /// The kept versions, oldest first, with the snapshots that pin each.
    public func versions() throws -> [CollectionVersion] {
        let records = try keptVersionRecords()
        let pins = state.withLock { snapshotPins }
        return records.values.sorted { $0.number < $1.number }.map { r in
            CollectionVersion(
                number: r.number, time: Date(timeIntervalSince1970: r.time), documents: r.documents,
                segments: r.entry.segments.count, snapshots: pins.filter { $0.version == r.number }.map(\.name).sorted())
        }
    }

    /// Commits a state as the next version (or, without `newVersion`, only changes what the
    /// manifest tracks beside it): the manifest first, then the version's record.
    func commitVersion(_ commit: DeletedRowsCommit, newVersion: Bool = true) throws {
        // A collection object a restore replaced commits nothing more: the manifest is the new one's.
        if state.withLock({ closed }) { throw TidepoolError.closed("collection '\(name)' was closed (replaced by a restore)") }
        let committed = try owner().persist(collection: commit.entry, newVersion: newVersion)
        finishDeletedRows(commit)
        state.withLock {
            retired = committed.retired ?? []
            versionNumber = committed.version ?? 0
            versionTime = committed.versionTime ?? 0
        }
        if newVersion { recordVersion(committed, deletedCounts: commit.files.mapValues(\.rows)) }
    }

    /// Writes the record of a committed version. A failure is logged, not thrown: the commit
    /// stands (the manifest holds the current state), and the next writable open writes the
    /// current version's record if it is missing.
    func recordVersion(_ entry: Manifest.CollectionEntry, deletedCounts: [UInt64: Int]) {
        recordVersion(entry, deletedCounts: deletedCounts, unlessPresent: false)
    }

    /// `unlessPresent`: first ask whether the record is there (mending); a version just
    /// committed has none, so its commit costs no extra request on object storage.
    private func recordVersion(_ entry: Manifest.CollectionEntry, deletedCounts: [UInt64: Int], unlessPresent: Bool) {
        guard let number = entry.version, number > 0 else { return }
        let documents = entry.segments.reduce(0) { $0 + $1.rows - (deletedCounts[$1.id] ?? $1.deleted.count) }
        let record = VersionRecord(number: number, time: entry.versionTime ?? 0, documents: documents, entry: entry.asVersionState)
        let name = versionRecordName(number)
        do {
            try versionsLock.withLock {
                if !unlessPresent || (try? storage.size(of: name)) == nil { try storage.writeWhole(name, try record.encoded()) }
                state.withLock { versionRecords?[number] = record }
            }
        } catch {
            logger.warning(
                "collection '\(self.name)': writing the record of version \(number) failed (it will be missing from versions()): \(error)")
        }
    }

    func versionRecordName(_ number: UInt64) -> String { folder + "/" + VersionRecord.folder + "/" + VersionRecord.fileName(number) }

    /// The kept versions' records by number, read from storage the first time.
    func keptVersionRecords() throws -> [UInt64: VersionRecord] {
        if let known = state.withLock({ versionRecords }) { return known }
        return try versionsLock.withLock {
            if let known = state.withLock({ versionRecords }) { return known }
            var records: [UInt64: VersionRecord] = [:]
            for file in try storage.list(folder + "/" + VersionRecord.folder) {
                guard let number = VersionRecord.number(fromFileName: file) else { continue }
                let name = versionRecordName(number)
                let bytes = try storage.read(name, offset: 0, count: try storage.size(of: name))
                let record = try VersionRecord.decode(bytes, file: storage.displayPath(name))
                guard record.number == number else {
                    throw TidepoolError.corrupt(
                        file: storage.displayPath(name), offset: ChecksummedJSON.headerSize,
                        reason: "the record of version \(record.number), named for version \(number)")
                }
                records[number] = record
            }
            state.withLock { versionRecords = records }
            return records
        }
    }

    /// The record of the version `selector` names; `notFound` when it is not kept. A read-only
    /// open (a query node) reads the records again when the one asked for is not among those
    /// it read: the writer commits versions after it.
    func versionRecord(_ selector: VersionSelector) throws -> VersionRecord {
        do {
            return try versionRecord(selector, in: try keptVersionRecords())
        } catch TidepoolError.notFound where wal == nil {
            state.withLock { versionRecords = nil }
            return try versionRecord(selector, in: try keptVersionRecords())
        }
    }

    private func versionRecord(_ selector: VersionSelector, in records: [UInt64: VersionRecord]) throws -> VersionRecord {
        // Only for the message: a read that finds its version pays for nothing else.
        func kept() -> String {
            guard let oldest = records.values.min(by: { $0.number < $1.number }) else { return " (none is kept)" }
            return " (the oldest kept is version \(oldest.number), from \(Self.iso(oldest.time)))"
        }
        switch selector {
        case .version(let n):
            guard let r = records[n] else {
                throw TidepoolError.notFound("collection '\(name)' has no version \(n): never committed, or removed by retention\(kept())")
            }
            return r
        case .time(let t):
            // Times are shown to the millisecond: a time read back from a listing selects its version.
            let at = t.timeIntervalSince1970
            guard let r = records.values.filter({ ($0.time * 1000).rounded(.down) / 1000 <= at }).max(by: { $0.number < $1.number })
            else {
                throw TidepoolError.notFound("collection '\(name)' has no kept version at or before \(Self.iso(at))\(kept())")
            }
            return r
        }
    }

    /// An RFC 3339 time to the millisecond, as versions are listed.
    static func iso(_ seconds: Double) -> String { rfc3339(Date(timeIntervalSince1970: seconds)) }

    /// The snapshot a read sees: the current state, or a kept version's.
    func readSnapshot(asOf selector: VersionSelector?) throws -> Snapshot {
        guard let selector else { return snapshot() }
        return try versionView(selector).snapshot
    }

    /// A kept version opened for reads (from a cache of the last four opened).
    func versionView(_ selector: VersionSelector) throws -> VersionView {
        let record = try versionRecord(selector)
        if let view = state.withLock({ () -> VersionView? in
            guard let i = versionViews.firstIndex(where: { $0.number == record.number }) else { return nil }
            let view = versionViews.remove(at: i)
            versionViews.append(view)
            return view
        }) {
            return view
        }
        let view = VersionView(number: record.number, segments: try openSegments(of: record), flushedSeq: record.entry.flushedSeq)
        state.withLock {
            versionViews.append(view)
            if versionViews.count > 4 { versionViews.removeFirst() }
        }
        return view
    }

    /// A version's segments, opened afresh with that version's deletions.
    func openSegments(of record: VersionRecord) throws -> [Segment] {
        var segs: [Segment] = []
        for s in record.entry.segments {
            let seg = try Segment(
                id: s.id, name: folder + "/segments/" + s.file, storage: storage, dimension: dimension, metric: metric,
                verifyChecksums: verifyChecksums, size: s.bytes, rows: s.rows)
            guard seg.rowCount == s.rows else {
                throw TidepoolError.corrupt(
                    file: seg.path, offset: 0, reason: "segment has \(seg.rowCount) rows, version \(record.number) says \(s.rows)")
            }
            for r in try loadDeletedRows(s, rowCount: seg.rowCount) {
                guard Int(r) < seg.rowCount else {
                    throw TidepoolError.corrupt(
                        file: storage.displayPath(versionRecordName(record.number)), offset: 0,
                        reason: "tombstone row \(r) beyond segment \(s.file)'s \(seg.rowCount) rows")
                }
                seg.tombstones.mark(Int(r), seq: 1)
            }
            segs.append(seg)
        }
        return segs
    }

    /// The documents among `ids` as they were in a kept version, in the order asked.
    public func get(ids: [DocumentID], asOf selector: VersionSelector) throws -> [Document] {
        let view = try versionView(selector)
        return try ids.compactMap { id in
            guard let key = try view.row(of: id) else { return nil }
            return Document(id: id, vector: try view.snapshot.vector(key), attributes: schema.normalized(try view.snapshot.attributes(key)))
        }
    }

    /// What is wrong with the kept versions (for `verify`): a record that does not decode, a
    /// file a kept version or snapshot names that is missing or has another size, a snapshot
    /// whose version is not kept.
    func versionProblems() -> [String] {
        let records: [UInt64: VersionRecord]
        do { records = try keptVersionRecords() } catch { return ["collection '\(name)': \(error)"] }
        var problems: [String] = []
        for r in records.values.sorted(by: { $0.number < $1.number }) {
            for s in r.entry.segments {
                let file = folder + "/segments/" + s.file
                guard let size = try? storage.size(of: file) else {
                    problems.append("collection '\(name)': version \(r.number) names \(storage.displayPath(file)), which is missing")
                    continue
                }
                if size != s.bytes {
                    problems.append(
                        "collection '\(name)': version \(r.number) names \(storage.displayPath(file)) of \(s.bytes) bytes; it has \(size)")
                }
                if let d = s.deletedFile, (try? storage.size(of: folder + "/segments/" + d)) == nil {
                    problems.append("collection '\(name)': version \(r.number) names deleted-rows file \(d), which is missing")
                }
            }
        }
        for pin in state.withLock({ snapshotPins }) where records[pin.version] == nil {
            problems.append("collection '\(name)': snapshot '\(pin.name)' pins version \(pin.version), whose record is missing")
        }
        return problems
    }

    /// Checks that every file a version names is there with its size: a version looked up before
    /// the collection was closed for a restore may have aged out meanwhile.
    func checkFilesPresent(_ record: VersionRecord) throws {
        for s in record.entry.segments {
            let name = folder + "/segments/" + s.file
            guard let size = try? storage.size(of: name), size == s.bytes else {
                throw TidepoolError.notFound(
                    "collection '\(self.name)': version \(record.number) is no longer kept (\(storage.displayPath(name)))")
            }
            if let d = s.deletedFile, (try? storage.size(of: folder + "/segments/" + d)) == nil {
                throw TidepoolError.notFound("collection '\(self.name)': version \(record.number) is no longer kept (\(d))")
            }
        }
    }

    /// Closes the collection for a restore that replaces it: nothing it has queued or is asked
    /// from now on commits (`closed` is set first), then its background work and log stop.
    func closeForReplacement() throws {
        state.withLock { closed = true }
        state.broadcast()
        background.sync {}
        indexer.sync {}
        try wal?.close()
    }

    /// Writes the current version's record if a crash came between its commit and its record.
    func mendCurrentVersionRecord(_ entry: Manifest.CollectionEntry) {
        recordVersion(entry, deletedCounts: state.withLock { deletedRowFiles.mapValues(\.rows) }, unlessPresent: true)
    }
}
