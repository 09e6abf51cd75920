import Foundation
import Tidepool

/// Writes a `DocumentSource` into a collection (`tidepool import`, `tidepool migrate`): batch by
/// batch, printing `committed N` on standard output each time N documents in total are durable, so
/// a script that kills the import can check that at least N survive.
struct Importer {
    let location: DatabaseLocationOptions
    let collection: String
    let metric: Metric
    /// For a new collection whose first documents have no vectors.
    let dimension: Int?
    /// An attribute a new collection indexes for BM25.
    let textField: String?
    let sync: SyncPolicy
    let batchSize: Int
    let flush: Bool
    /// Added to the `committed` count (documents a resumed run skipped).
    var alreadyCommitted = 0

    func run(_ source: inout any DocumentSource, from name: String) throws {
        var pending = try source.next(batchSize)
        if pending.isEmpty { try source.finish() }  // an empty file, or a converter that failed before its first line
        let db = try location.open(DatabaseOptions(syncPolicy: sync))
        let created = !db.collectionNames.contains(collection)
        let coll: Collection
        do {
            coll = try created ? createCollection(db, first: pending, name: name) : db.collection(collection)
        } catch {
            try? db.close()
            throw error
        }
        let progress = ProgressBar(total: source.expectedRows ?? 0, unit: .vectors)
        var done = 0
        let start = monotonicSeconds()
        do {
            while !pending.isEmpty {
                try coll.upsert(pending)
                done += pending.count
                emit("committed \(alreadyCommitted + done)")
                progress.update(done)
                pending = try source.next(batchSize)
            }
            try source.finish()
        } catch {
            // Rows already reported committed stay; a collection this run created and wrote
            // nothing to is removed, so a failed import leaves no empty collection.
            if created && done == 0 { try? db.dropCollection(collection) }
            try? db.close()
            throw error
        }
        progress.finish()
        let ingest = monotonicSeconds() - start
        note(String(format: "imported %d documents in %.2f s (%.0f documents/s)", done, ingest, Double(done) / max(ingest, 1e-9)))
        if flush {
            let t0 = monotonicSeconds()
            try coll.flush()
            note(String(format: "flushed and indexed in %.2f s", monotonicSeconds() - t0))
        }
        try db.close()
    }

    /// A new collection, its dimension from the first document with a vector (or `dimension`), a
    /// text index over `textField` when given.
    private func createCollection(_ db: Database, first: [Document], name: String) throws -> Collection {
        guard let dim = first.first(where: \.hasVector)?.vector.count ?? dimension else {
            throw TidepoolError.invalidArgument(
                "the first \(first.count) documents of '\(name)' have no vectors: give --dimension for the new collection")
        }
        let config = CollectionConfig(text: textField.map { TextIndexConfig(fields: [$0]) })
        return try db.createCollection(collection, dimension: dim, metric: metric, config: config)
    }
}
