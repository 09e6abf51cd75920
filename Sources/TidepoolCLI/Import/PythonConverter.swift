import Foundation
import Tidepool

/// Documents through Python: a module of the client package (`tidepool_client.convert` for Parquet
/// with pyarrow and HDF5 with h5py, `tidepool_client.migrate` for Chroma, LanceDB and Qdrant
/// through their own clients) writes JSON Lines to a pipe, which `JSONLinesSource` reads as it
/// arrives. `$TIDEPOOL_PYTHON` names the interpreter (default `python3`).
struct PythonConverter: DocumentSource {
    private let process: Process
    private let errors: URL
    private var lines: JSONLinesSource
    private let path: String
    private var finished = false

    /// `path` names the source in messages; `arguments` follow `-m module`.
    init(module: String, path: String, arguments: [String], fields: DocumentJSONFields, firstID: UInt64) throws {
        self.path = path
        let python = ProcessInfo.processInfo.environment["TIDEPOOL_PYTHON"] ?? "python3"
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-m", module] + arguments
        let out = Pipe()
        errors = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tidepool-convert-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: errors.path, contents: nil) else {
            throw TidepoolError.io(path: errors.path, operation: "create", errno: errno)
        }
        process.standardOutput = out
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw TidepoolError.invalidArgument("reading '\(path)' needs \(python) with tidepool-client installed: \(error)")
        }
        lines = JSONLinesSource(
            fd: out.fileHandleForReading.fileDescriptor, name: path, fields: fields, rowIDs: true, firstID: firstID)
    }

    var expectedRows: Int? { nil }

    mutating func next(_ max: Int) throws -> [Document] {
        do { return try lines.next(max) } catch {
            process.terminate()
            try? finish()
            throw error
        }
    }

    mutating func finish() throws {
        if finished { return }
        finished = true
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: errors) }
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            let last = message.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
            throw TidepoolError.invalidArgument("reading '\(path)' failed: \(last)")
        }
    }
}
