import ArgumentParser
import Foundation
import Tidepool

/// `--version N` or `--time RFC3339`: which kept version a command starts from.
struct VersionChoiceOptions: ParsableArguments {
    @Option(help: "A kept version's number.") var version: UInt64?
    @Option(help: "The newest kept version committed at or before this RFC 3339 time (2026-12-07T10:00:00Z).") var time: String?

    func validate() throws {
        if version != nil && time != nil { throw ValidationError("give at most one of --version and --time") }
        if let time, parseRFC3339(time) == nil { throw ValidationError("--time must be an RFC 3339 time such as 2026-12-07T10:00:00Z") }
    }

    /// Nil when neither was given.
    var selector: VersionSelector? {
        if let version { return .version(version) }
        return time.flatMap(parseRFC3339).map { .time($0) }
    }
}

struct VersionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "versions", abstract: "List a collection's kept versions and its snapshots (read-only).")

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "Collection name.") var collection: String
    @Flag(help: "One JSON object.") var json = false

    func run() throws {
        try runReportingErrors {
            let db = try location.open(DatabaseOptions(readOnly: true))
            defer { try? db.close() }
            let c = try db.collection(collection)
            let versions = try c.versions()
            if json {
                emit(
                    jsonLine([
                        "version": c.version, "last_seq": c.info().lastSeq,
                        "versions": versions.map {
                            [
                                "version": $0.number, "time": rfc3339($0.time), "documents": $0.documents, "segments": $0.segments,
                                "snapshots": $0.snapshots,
                            ] as [String: Any]
                        },
                    ]))
                return
            }
            for v in versions {
                let pins = v.snapshots.isEmpty ? "" : "  snapshots: " + v.snapshots.joined(separator: ", ")
                let current = v.number == c.version ? "  (current)" : ""
                emit("version \(v.number)  \(rfc3339(v.time))  \(v.documents) documents, \(v.segments) segments\(pins)\(current)")
            }
            emit("last logged operation: \(c.info().lastSeq) (restore --sequence takes any from the oldest version's on)")
        }
    }
}

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Pin a version of a collection under a name (retention keeps it), or delete a snapshot.",
        discussion: "Without --version the collection is flushed first: the snapshot holds every acknowledged write.")

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "Collection name.") var collection: String
    @Option(help: "Snapshot name.") var name: String
    @Option(help: "A kept version to pin (default: the current state).") var version: UInt64?
    @Flag(help: "Delete the snapshot instead.") var delete = false

    func run() throws {
        try runReportingErrors {
            let db = try location.open(DatabaseOptions(createIfMissing: false))
            defer { try? db.close() }
            let c = try db.collection(collection)
            if delete {
                try c.deleteSnapshot(name)
                emit("\(collection): deleted snapshot \(name)")
            } else {
                let s = try c.createSnapshot(name, version: version)
                emit("\(collection): snapshot \(s.name) pins version \(s.version)")
            }
        }
    }
}

struct BranchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "branch",
        abstract: "Create a collection as a copy-on-write branch of another (its files shared, nothing copied locally).")

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "The source collection.") var collection: String
    @Option(help: "The new collection's name.") var name: String
    @OptionGroup var from: VersionChoiceOptions

    func run() throws {
        try runReportingErrors {
            let db = try location.open(DatabaseOptions(createIfMissing: false))
            defer { try? db.close() }
            let r = try db.createBranch(name, from: collection, at: from.selector)
            emit(
                String(
                    format: "%@: branch of %@ version %llu in %.2f ms; %d files shared, %d bytes written, %d bytes copied", name,
                    collection, r.version, r.seconds * 1000, r.filesShared, r.bytesWritten, r.bytesCopied))
        }
    }
}
