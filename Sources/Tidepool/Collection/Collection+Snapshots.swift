import Foundation

/// Snapshots: named versions that retention never removes. A snapshot is a line in the
/// manifest (`CollectionEntry.snapshots`), so taking one writes a few hundred bytes and copies
/// nothing; the files of its version stay until the snapshot is deleted and no kept version
/// names them.
extension Collection {
    /// The collection's snapshots, oldest first.
    public var snapshots: [CollectionSnapshot] { state.withLock { snapshotPins } }

    /// Pins a version under `snapshotName`. Without `version`, everything written so far is
    /// flushed first, so the snapshot holds every write acknowledged before the call.
    @discardableResult
    public func createSnapshot(_ snapshotName: String, version: UInt64? = nil) throws -> CollectionSnapshot {
        _ = try writableLog("take a snapshot")
        try Database.validateName(snapshotName, what: "snapshot")
        if version == nil { _ = try committedVersion() }  // flushed: the current version holds every acknowledged write
        var result: Result<CollectionSnapshot, Error> = .failure(TidepoolError.closed("collection '\(name)' is closed"))
        // On `background`, where flushes, compactions and garbage collection run: the version
        // looked up here cannot age out before it is pinned.
        background.sync {
            result = Result {
                let (segs, cutoff, current) = state.withLock { (segments, flushedSeq, versionNumber) }
                let number = version ?? current
                _ = try versionRecord(.version(number))
                let pin = CollectionSnapshot(name: snapshotName, version: number, created: Date().timeIntervalSince1970)
                try state.withLock {
                    guard !snapshotPins.contains(where: { $0.name == snapshotName }) else {
                        throw TidepoolError.alreadyExists("collection '\(name)' has a snapshot named '\(snapshotName)'")
                    }
                    snapshotPins.append(pin)
                }
                do {
                    try commitVersion(try entryWritingDeletedRows(segments: segs, flushedSeq: cutoff), newVersion: false)
                } catch {
                    state.withLock { snapshotPins.removeAll { $0.name == snapshotName } }
                    throw error
                }
                return pin
            }
        }
        return try result.get()
    }

    /// Deletes a snapshot; its version's files go once no kept version or other snapshot needs them.
    public func deleteSnapshot(_ snapshotName: String) throws {
        _ = try writableLog("delete a snapshot")
        var result: Result<Void, Error> = .success(())
        background.sync {
            result = Result {
                let (segs, cutoff) = state.withLock { (segments, flushedSeq) }
                let removed = state.withLock { () -> CollectionSnapshot? in
                    guard let i = snapshotPins.firstIndex(where: { $0.name == snapshotName }) else { return nil }
                    return snapshotPins.remove(at: i)
                }
                guard let removed else {
                    throw TidepoolError.notFound("collection '\(name)' has no snapshot named '\(snapshotName)'")
                }
                do {
                    try commitVersion(try entryWritingDeletedRows(segments: segs, flushedSeq: cutoff), newVersion: false)
                } catch {
                    state.withLock { snapshotPins.append(removed) }
                    throw error
                }
            }
        }
        try result.get()
        scheduleFlush()  // collects what only the snapshot kept
    }

}
