import ArgumentParser
import Foundation
import Tidepool

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import documents from .fvecs, .npy (float32/float64), JSON Lines, CSV/TSV, Parquet or HDF5.",
        discussion: """
            The format comes from the extension (or --format) and is checked against the file's \
            signature where it has one. JSON Lines: one document a line, {"id", "vector" (or \
            "vector_b64", or neither for a document without one), "attributes", any other key an \
            attribute too}; --id-field, --vector-field and --text-field rename them. CSV/TSV: a header \
            row; --id-column (default id, else row numbers), --vector-column (default vector: a JSON \
            array or numbers separated by spaces), the other columns (or --attribute-columns) \
            attributes typed by column. Parquet and HDF5 (ann-benchmarks files: --dataset, default \
            train) are read by `python3 -m tidepool_client.convert` (the client package with pyarrow \
            or h5py; $TIDEPOOL_PYTHON names the interpreter). Ids without an id column are row \
            numbers plus --first-id. Prints `committed N` each time N documents in total are durable; \
            a progress bar goes to standard error when it is a terminal.
            """)

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "Collection name (created if missing).") var collection: String
    @Option(help: "Metric for a new collection: l2, cosine or ip.") var metric: String = "cosine"
    @Option(help: "Dimension for a new collection whose first documents have no vectors.") var dimension: Int?
    @Option(help: "The file's format: fvecs, npy, jsonl, csv, tsv, parquet or hdf5 (default: by extension).")
    var format: String?
    @Option(help: "JSON Lines: the key holding the id.") var idField: String = "id"
    @Option(help: "JSON Lines: the key holding the vector (numbers).") var vectorField: String = "vector"
    @Option(help: "JSON Lines: a key holding the text, stored as the attribute of that name (a new collection indexes it for BM25).")
    var textField: String?
    @Option(help: "CSV, Parquet: the id column.") var idColumn: String?
    @Option(help: "CSV, Parquet: the vector column.") var vectorColumn: String?
    @Option(help: "CSV: the attribute columns, comma-separated (default: every other column).") var attributeColumns: String?
    @Option(help: "HDF5: the dataset holding the vectors.") var dataset: String = "train"
    @Option(help: "Durability: always, batched (default: survives a process crash, fsync every 50 ms) or none.")
    var sync: String = "batched"
    @Option(help: "Documents per write.") var batchSize: Int = 1000
    @Option(help: "Id of the first row, where ids are row numbers.") var firstId: UInt64 = 0
    @Flag(help: "Do not flush and index at the end.") var noFlush = false
    @Argument(help: "The file.") var file: String

    func run() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        let importer = Importer(
            location: location, collection: collection, metric: try parseMetric(metric), dimension: dimension, textField: textField,
            sync: try parseSync(sync), batchSize: batchSize, flush: !noFlush)
        try runReportingErrors {
            var source = try openSource()
            try importer.run(&source, from: file)
        }
    }

    private func openSource() throws -> any DocumentSource {
        let kind = try ImportFormat.of(file, declared: format)
        switch kind {
        case .fvecs, .npy:
            return try MatrixSource(file, firstID: firstId)
        case .jsonl:
            let fd = try openRegularFile(file)
            let fields = DocumentJSONFields(
                id: idField, vector: vectorField, text: textField, textAttribute: textField ?? "text", flat: true)
            return JSONLinesSource(fd: fd, name: file, fields: fields, rowIDs: true, firstID: firstId)
        case .csv, .tsv:
            let columns = attributeColumns.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            return try CSVSource(
                path: file, delimiter: kind == .tsv ? "\t" : ",", idColumn: idColumn, vectorColumn: vectorColumn,
                attributeColumns: columns, firstID: firstId)
        case .parquet, .hdf5:
            var args = ["--dataset", dataset]
            if let idColumn { args += ["--id-column", idColumn] }
            if let vectorColumn { args += ["--vector-column", vectorColumn] }
            return try PythonConverter(
                module: "tidepool_client.convert", path: file, arguments: ["to-jsonl", file] + args, fields: DocumentJSONFields(),
                firstID: firstId)
        }
    }
}
