import Foundation

extension Collection {
    /// On object storage, deletes the segment files compactions replaced (and the deleted-rows
    /// files later flushes replaced) once nothing may read
    /// them: `storage.garbageGrace` has passed since they were retired, and the manifest has
    /// moved `retainedManifestVersions` generations past the first version without them (so no
    /// retained version names them). A file the current segments use is never deleted. The
    /// deleted ones leave the manifest with its next commit (deleting is idempotent, so a crash
    /// before that only deletes again). Costs one `DELETE` per file and nothing while there is
    /// nothing to collect.
    func collectRetiredFiles() {
        guard storage.retiresFilesLazily, let catalog = catalog else { return }
        let now = Date().timeIntervalSince1970
        let grace = storage.garbageGrace.inSeconds
        let generation = catalog.manifestGeneration
        let (due, live): ([Manifest.RetiredFile], Set<String>) = state.withLock {
            (
                retired.filter { now - $0.time >= grace && generation >= $0.generation + storage.retainedManifestGenerations },
                Set(segments.map { SegmentFormat.fileName(id: $0.id) } + deletedRowFiles.values.map(\.file))
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
        // Files only waiting for their grace period are looked at again when it ends; those
        // still named by a retained version wait for the manifest commits that retire it.
        let next = state.withLock {
            retired.filter { generation >= $0.generation + storage.retainedManifestGenerations }.map { $0.time + grace - now }
                .filter { $0 > 0 }.min()
        }
        if let next { scheduleFlush(after: next + 0.5) }
    }
}
