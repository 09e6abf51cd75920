import ArgumentParser
import Foundation
import Tidepool

@main
struct TidepoolCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidepool",
        abstract: "Tidepool: an embeddable vector database.",
        version: tidepoolReleaseVersion,
        subcommands: [
            ServeCommand.self, ImportCommand.self, CompactCommand.self, SearchCommand.self, InspectCommand.self, VerifyCommand.self,
            BenchCommand.self, VersionsCommand.self, SnapshotCommand.self, BranchCommand.self, BackupCommand.self,
            RestoreCommand.self, ExportCommand.self, MigrateCommand.self, CrashWriterCommand.self, S3CheckCommand.self,
        ])
}

/// Prints to standard error.
func note(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// Prints a line to standard output and flushes it, so a reader sees it at once.
func emit(_ s: String) {
    print(s)
    fflush(nil)
}

func parseSync(_ s: String) throws -> SyncPolicy {
    guard let p = SyncPolicy(rawValue: s) else { throw ValidationError("--sync must be always, batched or none") }
    return p
}

func parseMetric(_ s: String) throws -> Metric {
    guard let m = Metric(name: s) else { throw ValidationError("--metric must be l2, cosine or ip") }
    return m
}

/// Runs a throwing body and turns engine errors into a clean message and exit status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as TidepoolError {
        note("error: \(e)")
        throw ExitCode(1)
    }
}

func jsonID(_ id: DocumentID) -> Any {
    switch id {
    case .uint(let v): return v
    case .string(let s): return s
    }
}

func jsonLine(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
