import ArgumentParser
import Foundation
import Tidepool

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move a collection from Chroma, LanceDB or Qdrant into a Tidepool database.",
        discussion: """
            Reads through the source's own Python client (`python3 -m tidepool_client.migrate`: the \
            client package with chromadb, lancedb or qdrant-client installed; $TIDEPOOL_PYTHON names \
            the interpreter) and writes into --data/--storage as `tidepool import` does: ids, vectors, \
            metadata and Chroma's document texts (the attribute --text-attribute, indexed for BM25 in \
            a new collection). Prints `committed N` as documents become durable; after an interruption, \
            run again with --resume-from N (the last such N) to go on from there. To migrate into a \
            running server instead, run the Python tool with --url and --state.
            """)

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "chroma, lancedb or qdrant.") var from: String
    @Option(help: "The source's directory (Chroma, LanceDB, Qdrant local mode).") var sourcePath: String?
    @Option(help: "A Qdrant server, instead of --source-path.") var sourceUrl: String?
    @Option(help: "The source collection (LanceDB: table).") var sourceCollection: String
    @Option(help: "The Tidepool collection (default: the source's name).") var collection: String?
    @Option(help: "Metric for a new collection: l2, cosine or ip.") var metric: String = "cosine"
    @Option(help: "Chroma: the attribute for document texts.") var textAttribute: String = "text"
    @Option(help: "Qdrant: which named vector.") var vectorName: String?
    @Option(help: "LanceDB: the id column.") var idColumn: String = "id"
    @Option(help: "LanceDB: the vector column.") var vectorColumn: String = "vector"
    @Option(help: "Skip this many source records (the last `committed N` of an interrupted run).") var resumeFrom: Int = 0
    @Option(help: "Durability: always, batched or none.") var sync: String = "batched"
    @Option(help: "Documents per write.") var batchSize: Int = 1000

    func run() throws {
        guard ["chroma", "lancedb", "qdrant"].contains(from) else { throw ValidationError("--from must be chroma, lancedb or qdrant") }
        guard sourcePath != nil || (from == "qdrant" && sourceUrl != nil) else { throw ValidationError("give --source-path") }
        guard batchSize >= 1, resumeFrom >= 0 else { throw ValidationError("--batch-size must be at least 1, --resume-from at least 0") }
        var args = [
            "--from", from, "--collection", sourceCollection, "--jsonl", "--skip", String(resumeFrom), "--batch", String(batchSize),
            "--text-attribute", textAttribute, "--id-column", idColumn, "--vector-column", vectorColumn,
        ]
        if let sourcePath { args += ["--path", sourcePath] }
        if let sourceUrl { args += ["--source-url", sourceUrl] }
        if let vectorName { args += ["--vector-name", vectorName] }
        var importer = Importer(
            location: location, collection: collection ?? sourceCollection, metric: try parseMetric(metric), dimension: nil,
            textField: from == "chroma" ? textAttribute : nil, sync: try parseSync(sync), batchSize: batchSize, flush: true)
        importer.alreadyCommitted = resumeFrom
        try runReportingErrors {
            var source: any DocumentSource = try PythonConverter(
                module: "tidepool_client.migrate", path: "\(from) collection '\(sourceCollection)'", arguments: args,
                fields: DocumentJSONFields(), firstID: 0)
            try importer.run(&source, from: "\(from) collection '\(sourceCollection)'")
        }
    }
}
