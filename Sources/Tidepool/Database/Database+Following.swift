import Foundation

/// A read-only database on object storage following its writer: the writer names the next
/// manifest version and the next WAL object in advance (`manifest/<v+1>`, the WAL object that
/// starts at the next sequence number), so catching up is probing those names — a few `HEAD`s
/// and `GET`s, never a `LIST` or a `PUT` unless something changed.
extension Database {
    /// Brings a read-only database on object storage up to date with its writer, so that it sees
    /// every write acknowledged before `since`: a newer manifest (flushes, compactions, collections
    /// created or dropped) is loaded, and each collection applies the WAL objects written since.
    /// Concurrent callers share one round of probes. Elsewhere (a local directory, a writer,
    /// which is always current) it returns at once.
    public func catchUp(since: ContinuousClock.Instant = .now) throws {
        guard options.readOnly, let objects = storage as? ObjectStorage else { return }
        try follower.catchUp(since: since) { try self.refresh(objects) }
    }

    /// `catchUp()` on a thread of its own, unless one is in flight: returns at once. Errors are
    /// logged (the next catch-up tries again).
    public func catchUpInBackground() {
        guard options.readOnly, let objects = storage as? ObjectStorage else { return }
        follower.catchUpInBackground { [weak self] in
            guard let self else { return }
            do { try self.refresh(objects) } catch {
                self.options.logger.warning("catching up with the writer failed: \(error)")
                throw error
            }
        }
    }

    /// How far behind its writer a read-only database on object storage may be: the time since
    /// the last catch-up that succeeded began. Zero for a local directory or a writer.
    public var staleness: Duration? {
        guard options.readOnly, storage is ObjectStorage else { return .zero }
        return follower.staleness
    }

    /// Catches up every `interval` in the background (errors are logged and retried at the next
    /// tick), so that reads that do not ask for strong consistency are at most about that stale.
    public func follow(every interval: Duration) {
        guard options.readOnly, storage is ObjectStorage else { return }
        follower.start(every: interval) { [weak self] in
            guard let self else { return }
            do { try self.catchUp() } catch { self.options.logger.warning("catching up with the writer failed: \(error)") }
        }
    }

    private func refresh(_ objects: ObjectStorage) throws {
        while true {
            try loadNewerManifest(objects)
            let version = objects.currentManifestVersion
            for c in lock.withLock({ Array(open.values) }) { _ = try c.followLog() }
            // A WAL object may be missing because the writer flushed it into a segment and deleted
            // it; then the manifest naming that segment exists already (it is committed first).
            guard try objects.store.head(ObjectStorage.manifestKey(version + 1)) != nil else { return }
        }
    }

    /// Loads the newest manifest if there is a newer one: collections whose entry changed are
    /// reopened from it (their new segments come through the cache), dropped ones go away.
    private func loadNewerManifest(_ objects: ObjectStorage) throws {
        // A WAL object can vanish while a collection is reopened (the writer flushed again and
        // deleted it): then a newer manifest exists, and the load starts over from it.
        for attempt in 0..<5 {
            if try loadNewerManifestOnce(objects, lastAttempt: attempt == 4) { return }
        }
    }

    /// Whether the load is done (false: retry from a newer manifest).
    private func loadNewerManifestOnce(_ objects: ObjectStorage, lastAttempt: Bool) throws -> Bool {
        let current = objects.currentManifestVersion
        var newest = current
        while try objects.store.head(ObjectStorage.manifestKey(newest + 1)) != nil { newest += 1 }
        guard newest > current else { return true }
        let key = ObjectStorage.manifestKey(newest)
        guard let bytes = try objects.store.get(key, range: nil) else { throw objects.missing(key, "GET") }
        let next = try Manifest.decode(bytes, file: objects.displayPath(key))
        let (before, opened) = lock.withLock { (manifest, Set(open.keys)) }
        var reopened: [String: Collection] = [:]
        var failures: [String: TidepoolError] = [:]
        // Only the collections opened so far open again now; the others on first use.
        for entry in next.collections
        where opened.contains(entry.name) && before.collections.first(where: { $0.name == entry.name }) != entry {
            do {
                reopened[entry.name] = try Collection(catalog: self, entry: entry, storage: storage, options: options)
            } catch {
                failures[entry.name] =
                    error as? TidepoolError ?? .io(path: storage.displayPath("collections/" + entry.name), operation: "open", errno: EIO)
            }
        }
        let vanished = failures.values.contains { if case .io(_, _, ENOENT) = $0 { return true } else { return false } }
        if vanished && !lastAttempt { return false }
        lock.withLock {
            manifest = next
            let names = Set(next.collections.map(\.name))
            for name in Array(open.keys) + Array(failed.keys) + Array(unopened) where !names.contains(name) {
                open[name] = nil
                failed[name] = nil
                unopened.remove(name)
            }
            // New collections, and changed ones not opened again above (a failed one, or one
            // opened from the older entry meanwhile), open on their next use.
            for entry in next.collections where reopened[entry.name] == nil && failures[entry.name] == nil {
                let changed = before.collections.first(where: { $0.name == entry.name }) != entry
                if changed || (open[entry.name] == nil && failed[entry.name] == nil) {
                    open[entry.name] = nil
                    failed[entry.name] = nil
                    unopened.insert(entry.name)
                }
            }
            for (name, c) in reopened {
                open[name] = c
                failed[name] = nil
                unopened.remove(name)
            }
            for (name, e) in failures {
                open[name] = nil
                failed[name] = e
            }
        }
        // After the collections are in place: a reader that sees this version sees their state
        // (`readPosition`).
        objects.setManifestVersion(newest)
        return true
    }
}
