import Foundation

/// A query node (a read-only database on object storage) opens each collection on its first
/// use rather than at start: the node is ready as soon as it has read the manifest, a query for
/// one collection waits for that collection's files only, and a node in front of many
/// collections holds only those it serves (`serve --prewarm` opens some ahead of use).
extension Database {
    /// Whether collections open on first use: read-only on object storage.
    var opensOnUse: Bool { options.readOnly && storage is ObjectStorage }

    /// Opens the unopened collection `name` (one caller at a time; the others wait for it and
    /// share its failure). Returns when it is open, or no longer unopened (dropped, or a newer
    /// manifest changed it); the caller looks it up again.
    func openOnUse(_ name: String) throws {
        try opening.join(name) {
            // A newer manifest may move the entry on while its files download: then it opens again.
            for _ in 0..<5 {
                guard let entry = lock.withLock({ unopened.contains(name) ? manifest.collections.first { $0.name == name } : nil })
                else { return }
                let coll: Collection
                do {
                    coll = try Collection(catalog: self, entry: entry, storage: storage, options: options)
                } catch TidepoolError.io(_, _, ENOENT) {
                    // A WAL object went while it was read: the writer flushed it into a segment,
                    // named by a manifest version that exists now.
                    try catchUp()
                    continue
                } catch let e as TidepoolError {
                    if case .corrupt = e {
                        // Damage stays until the collection changes: reported on every use, as at open.
                        lock.withLock {
                            if unopened.contains(name), manifest.collections.first(where: { $0.name == name }) == entry {
                                unopened.remove(name)
                                failed[name] = e
                            }
                        }
                        options.logger.error("collection '\(name)' cannot be opened; the others are served: \(e)")
                    }
                    throw e
                }
                let installed = lock.withLock {
                    guard unopened.contains(name), manifest.collections.first(where: { $0.name == name }) == entry else { return false }
                    unopened.remove(name)
                    open[name] = coll
                    return true
                }
                if installed { return }
                try? coll.close()
            }
            throw TidepoolError.io(
                path: storage.displayPath("collections/" + name), operation: "open (the manifest kept changing)", errno: EAGAIN)
        }
    }
}

/// One opening per collection at a time: a caller that finds one running waits for it and
/// gets its error, if any, instead of starting another download of the same files.
final class OpenFlights: @unchecked Sendable {
    private let cond = NSCondition()
    private var running: Set<String> = []
    private var lastFailure: [String: any Error] = [:]

    func join(_ name: String, _ open: () throws -> Void) throws {
        cond.lock()
        if running.contains(name) {
            while running.contains(name) { cond.wait() }
            let failure = lastFailure[name]
            cond.unlock()
            if let failure { throw failure }
            return
        }
        running.insert(name)
        cond.unlock()
        var failure: (any Error)?
        do { try open() } catch { failure = error }
        cond.lock()
        running.remove(name)
        lastFailure[name] = failure
        cond.broadcast()
        cond.unlock()
        if let failure { throw failure }
    }
}
