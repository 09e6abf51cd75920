import ArgumentParser
import Foundation
import Tidepool

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import vectors from a .fvecs or float32 .npy file.",
        discussion: """
            Prints `committed N` on standard output each time N documents in total are durable, \
            so a script that kills the import can check that at least N survive. Ids are row numbers \
            (plus --first-id). A progress bar goes to standard error when it is a terminal.
            """)

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "Collection name (created if missing).") var collection: String
    @Option(help: "Metric for a new collection: l2, cosine or ip.") var metric: String = "cosine"
    @Option(help: "Durability: always, batched (default: survives a process crash, fsync every 50 ms) or none.")
    var sync: String = "batched"
    @Option(help: "Documents per write.") var batchSize: Int = 1000
    @Option(help: "Id of the first row.") var firstId: UInt64 = 0
    @Flag(help: "Do not flush and index at the end.") var noFlush = false
    @Argument(help: "The .fvecs or .npy file.") var file: String

    func run() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        let policy = try parseSync(sync)
        let metricValue = try parseMetric(metric)
        try runReportingErrors {
            let matrix = try VectorFile.readVectors(file)
            // Ids firstId ..< firstId + rows must all exist.
            if matrix.rows > 0, UInt64.max - firstId < UInt64(matrix.rows - 1) {
                throw ValidationError("--first-id \(firstId) leaves no room for \(matrix.rows) ids below 2^64")
            }
            let db = try location.open(DatabaseOptions(syncPolicy: policy))
            let coll: Collection
            let created = !db.collectionNames.contains(collection)
            if !created {
                coll = try db.collection(collection)
                guard coll.dimension == matrix.dimension else {
                    throw TidepoolError.dimensionMismatch(collection: collection, expected: coll.dimension, got: matrix.dimension)
                }
            } else {
                coll = try db.createCollection(collection, dimension: matrix.dimension, metric: metricValue)
            }
            let progress = ProgressBar(total: matrix.rows, unit: .vectors)
            var done = 0
            let start = monotonicSeconds()
            do {
                while done < matrix.rows {
                    let end = min(done + batchSize, matrix.rows)
                    var docs: [Document] = []
                    docs.reserveCapacity(end - done)
                    for i in done..<end {
                        docs.append(Document(id: .uint(firstId + UInt64(i)), vector: matrix.row(i)))
                    }
                    try coll.upsert(docs)
                    done = end
                    emit("committed \(done)")
                    progress.update(done)
                }
            } catch {
                // Rows already reported committed stay; a collection this import created and
                // wrote nothing to is removed, so a failed import leaves no empty collection.
                if created && done == 0 { try? db.dropCollection(collection) }
                try? db.close()
                throw error
            }
            progress.finish()
            let ingest = monotonicSeconds() - start
            note(
                String(
                    format: "imported %d vectors in %.2f s (%.0f vectors/s)", matrix.rows, ingest, Double(matrix.rows) / max(ingest, 1e-9)))
            if !noFlush {
                let t0 = monotonicSeconds()
                try coll.flush()
                note(String(format: "flushed and indexed in %.2f s", monotonicSeconds() - t0))
            }
            try db.close()
        }
    }
}
