import ArgumentParser
import Foundation
import Tidepool

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a collection's documents to JSON Lines or Parquet, streaming, in id order.",
        discussion: """
            JSON Lines: one {"id", "vector" (float32 values in their shortest form; "vector_b64" with \
            --vector-encoding base64), "attributes"} a line, which `tidepool import` reads back \
            exactly. Parquet (by extension or --format): columns id, vector (fixed-size list of \
            float32) and one per attribute, written by `python3 -m tidepool_client.convert` (the \
            client package with pyarrow) from a JSON Lines file beside the output. The database is \
            opened read-only, which a running server's lock refuses: stop it first, or read through \
            its HTTP API (the Python client's scan). A progress bar goes to standard error on a terminal.
            """)

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "Collection name.") var collection: String
    @Option(help: "Output file (.jsonl or .parquet).") var to: String
    @Option(help: "jsonl or parquet (default: by extension).") var format: String?
    @Option(help: "Vectors as float (default) or base64 (JSON Lines).") var vectorEncoding: String = "float"
    @Option(help: "Only documents this JSON filter admits (docs/FILTERS.md).") var filter: String?
    @Flag(help: "Leave vectors out.") var noVectors = false

    func run() throws {
        let kind = (format ?? ((to as NSString).pathExtension.lowercased() == "parquet" ? "parquet" : "jsonl")).lowercased()
        guard kind == "jsonl" || kind == "parquet" else { throw ValidationError("--format must be jsonl or parquet, not '\(kind)'") }
        guard vectorEncoding == "float" || vectorEncoding == "base64" else {
            throw ValidationError("--vector-encoding must be float or base64")
        }
        try runReportingErrors {
            let db = try location.open(DatabaseOptions(readOnly: true))
            defer { try? db.close() }
            let coll = try db.collection(collection)
            let parsed = try filter.map { text -> Filter in
                do { return try Filter(json: try JSONParser.parse(Array(text.utf8)), path: "--filter") } catch let e as TidepoolError {
                    throw e
                } catch { throw TidepoolError.invalidArgument("--filter is not JSON: \(error)") }
            }
            // Opened read-only (no writer can hold the lock meanwhile): the state at opening, however long this takes.
            let total = try coll.count(filter: parsed)
            let jsonl = kind == "jsonl" ? to : to + ".jsonl-\(getpid()).tmp"
            let written = try writeLines(coll, filter: parsed, total: total, to: jsonl)
            if kind == "parquet" {
                defer { try? FileManager.default.removeItem(atPath: jsonl) }
                try convertToParquet(jsonl)
            }
            note("exported \(written) documents to \(to)")
        }
    }

    private func writeLines(_ coll: Collection, filter: Filter?, total: Int, to path: String) throws -> Int {
        guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
            throw TidepoolError.io(path: path, operation: "create", errno: errno)
        }
        defer { try? out.close() }
        let progress = ProgressBar(total: total, unit: .vectors)
        var after: DocumentID? = nil
        var written = 0
        repeat {
            let page = try coll.scan(filter: filter, after: after, limit: 1000, includeVectors: !noVectors)
            var bytes: [UInt8] = []
            for d in page.documents {
                bytes += d.jsonLine(vectors: !noVectors, base64: vectorEncoding == "base64")
                bytes.append(0x0A)
            }
            try out.write(contentsOf: bytes)
            written += page.documents.count
            progress.update(written)
            after = page.next
        } while after != nil
        try out.synchronize()
        progress.finish()
        return written
    }

    private func convertToParquet(_ jsonl: String) throws {
        let python = ProcessInfo.processInfo.environment["TIDEPOOL_PYTHON"] ?? "python3"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-m", "tidepool_client.convert", "to-parquet", jsonl, to]
        let errors = Pipe()
        p.standardError = errors
        do { try p.run() } catch {
            throw TidepoolError.invalidArgument("writing Parquet needs \(python) with tidepool-client and pyarrow: \(error)")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TidepoolError.invalidArgument(
                "writing '\(to)' failed: \(message.split(separator: "\n").last.map(String.init) ?? "exit \(p.terminationStatus)")")
        }
    }
}
