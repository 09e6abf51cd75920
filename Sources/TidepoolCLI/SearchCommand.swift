import ArgumentParser
import Foundation
import Tidepool

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Search a collection with the vectors of a query file.")

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "Collection name.") var collection: String
    @Option(help: "Queries (.fvecs or .npy).") var queryFile: String
    @Option(help: "Neighbours per query.") var k: Int = 10
    @Option(help: "HNSW beam width (default: the collection's).") var ef: Int?
    @Flag(help: "Exact (brute-force) search: all queries in one pass over the rows (a blocked matrix product).") var exact = false
    @Option(help: "Threads for an exact search (default: every core).") var threads: Int?
    @Flag(help: "One JSON object per query per line: {\"ids\":[…],\"distances\":[…]}.") var json = false

    func run() throws {
        try runReportingErrors {
            let queries = try VectorFile.readVectors(queryFile)
            let db = try location.open(DatabaseOptions(readOnly: true))
            defer { try? db.close() }
            let coll = try db.collection(collection)
            if let threads, threads < 1 || threads > 1024 {
                throw TidepoolError.invalidArgument("--threads must be in 1...1024, got \(threads)")
            }
            var options = SearchOptions(ef: ef, exact: exact)
            if let threads { options.maxThreads = threads }
            // Exact searches go in batches of 4,096 queries (the heaps of a batch stay small).
            let batch = exact ? 4096 : 1
            var first = 0
            while first < queries.rows {
                let rows = first..<min(queries.rows, first + batch)
                let results = try coll.search(vectors: rows.map { queries.row($0) }, k: k, options: options)
                for (i, hits) in zip(rows, results.hits) { report(i, hits) }
                first = rows.upperBound
            }
        }
    }

    private func report(_ i: Int, _ hits: [SearchHit]) {
        if json {
            emit(jsonLine(["ids": hits.map { jsonID($0.id) }, "distances": hits.map { Double($0.distance) }]))
        } else {
            emit("query \(i): " + hits.map { "\($0.id):\(String(format: "%.6f", $0.distance))" }.joined(separator: " "))
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Describe the collections of a data directory.")

    @OptionGroup var location: DatabaseLocationOptions
    @Flag(help: "One JSON object with a `collections` array.") var json = false
    @Option(help: "Show the tiers segments get under this memory budget, in MB (as `serve --memory-budget` would).")
    var memoryBudget: Int?

    func run() throws {
        try runReportingErrors {
            if let data = location.data, !FileManager.default.fileExists(atPath: data + "/MANIFEST") {
                throw TidepoolError.invalidArgument("no database at '\(data)' (missing MANIFEST)")
            }
            if let b = memoryBudget, b < 0 || b > 1 << 30 {
                throw TidepoolError.invalidArgument("--memory-budget must be in 0...\(1 << 30) MB, got \(b)")
            }
            let db = try location.open(DatabaseOptions(readOnly: true, memoryBudget: memoryBudget.map { $0 << 20 }))
            defer { try? db.close() }
            let infos = try db.collectionNames.map { try db.collection($0).info() }
            if json {
                let items: [[String: Any]] = infos.map { c in
                    [
                        "name": c.name, "count": c.count, "dimension": c.dimension, "metric": c.metric.rawValue,
                        "segments": c.segments.map {
                            [
                                "id": $0.id, "rows": $0.rows, "deleted_rows": $0.deletedRows,
                                "bytes": $0.bytes, "hnsw": $0.hasGraph, "index": $0.index, "ivf_lists": $0.ivfLists,
                                "graph_mean_degree": $0.graphMeanDegree,
                                "search_section_bytes": $0.searchResidentBytes, "tier": $0.tier.rawValue,
                                "tier_section_bytes": $0.tierBytes,
                            ] as [String: Any]
                        },
                        "deleted_rows": c.segments.reduce(0) { $0 + $1.deletedRows },
                        "memtable_rows": c.memtableRows, "memtable_indexed_rows": c.memtableIndexedRows, "wal_bytes": c.walBytes,
                        "bytes_on_disk": c.segments.reduce(0) { $0 + $1.bytes } + c.walBytes,
                    ]
                }
                emit(jsonLine(["collections": items]))
            } else {
                for c in infos {
                    let bytes = c.segments.reduce(0) { $0 + $1.bytes } + c.walBytes
                    emit(
                        "\(c.name): \(c.count) documents, dimension \(c.dimension), metric \(c.metric.rawValue), "
                            + "\(c.segments.count) segments, \(c.segments.reduce(0) { $0 + $1.deletedRows }) deleted rows, "
                            + "\(c.memtableRows) rows in memory (\(c.memtableIndexedRows) indexed), \(bytes) bytes on disk (WAL \(c.walBytes))"
                    )
                    for s in c.segments {
                        emit(
                            "  segment \(s.id): \(s.rows) rows, \(s.deletedRows) deleted, \(s.bytes) bytes, \(s.index == "ivf" ? "IVF (\(s.ivfLists) lists)" : s.index == "hnsw" ? String(format: "HNSW (%.1f links per node at level 0)", s.graphMeanDegree) : "flat"), \(s.tier.rawValue) tier, \(s.tierBytes) section bytes in memory while searched"
                        )
                    }
                }
                if infos.isEmpty { emit("no collections") }
            }
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check every checksum and invariant; exit status 0 when sound.")

    @OptionGroup var location: DatabaseLocationOptions

    func run() throws {
        let problems = Database.verify(url: location.url, objectStorage: location.objectStorage)
        if problems.isEmpty {
            emit("ok: \(location.url) is sound")
            return
        }
        for p in problems { emit("problem: \(p)") }
        throw ExitCode(1)
    }
}
