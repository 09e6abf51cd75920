import ArgumentParser
import Foundation
import Tidepool

struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Merge each collection's segments into one (dropping deleted rows, rebuilding the graph).",
        discussion: "Searching one segment is faster than searching several; compaction runs on all cores.")

    @Option(help: "Data directory.") var data: String
    @Option(help: "Only this collection (default: all).") var collection: String?

    func run() throws {
        try runReportingErrors {
            let db = try Database(path: data, options: DatabaseOptions(createIfMissing: false))
            defer { try? db.close() }
            for name in collection.map({ [$0] }) ?? db.collectionNames {
                let c = try db.collection(name)
                let before = c.info().segments.count
                let t0 = monotonicSeconds()
                try c.compact()
                emit(String(format: "%@: %d segments -> %d in %.1f s", name, before, c.info().segments.count, monotonicSeconds() - t0))
            }
        }
    }
}
