import ArgumentParser
import Foundation
import Tidepool

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy one collection, with a checksum for every 4 MiB, to a directory or an s3:// prefix.",
        discussion: """
            Reads the database without locking it: a server may go on serving and writing while the \
            backup runs. The backup holds the collection's committed version and the log after it, \
            so every write acknowledged before the backup started is in it. `tidepool restore` \
            recreates the collection from it, checking every byte.
            """)

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "The collection to back up.") var collection: String
    @Option(help: "Where the backup goes: a directory or s3://bucket/prefix that holds no backup yet.") var to: String

    func run() throws {
        try runReportingErrors {
            let bar = ProgressBar(total: 0, unit: .bytes)
            let r = try Backup.create(
                source: location.url, collection: collection, destination: to, objectStorage: location.objectStorage,
                progress: bar.update)
            bar.finish()
            emit(
                String(
                    format: "%@: version %llu, %d files, %.1f MB in %.2f s (%.0f MB/s) -> %@", collection, r.version, r.files,
                    Double(r.bytes) / 1e6, r.seconds, r.bytesPerSecond / 1e6, to))
        }
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Recreate a collection from a backup (--from), or make a kept version of it current again (--version/--time).",
        discussion: """
            From a backup, every byte is checked against its checksums; a damaged or missing file fails \
            with its name and offset and creates nothing. A version restore commits that version as a \
            new one (writes after it are undone; they stay in the older versions). Both open the \
            database as its writer: stop a server on a local directory first, or use the HTTP route \
            (POST /v1/collections/{name}/restore) for a version.
            """)

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "The backup: a directory or s3://bucket/prefix.") var from: String?
    @Option(help: "The collection: the name to restore a backup as (default: its name then), or the one whose version to restore.")
    var collection: String?
    @OptionGroup var version: VersionChoiceOptions
    @Option(help: "Restore the collection to its state right after this logged operation (`tidepool versions` shows the last one).")
    var sequence: UInt64?

    func validate() throws {
        let points = (version.selector == nil ? 0 : 1) + (sequence == nil ? 0 : 1)
        if from != nil && version.selector != nil { throw ValidationError("give --from BACKUP or --version/--time, not both") }
        if points > 1 { throw ValidationError("give one of --version, --time and --sequence") }
        if from == nil && points == 0 {
            throw ValidationError("give --from BACKUP, or --version N / --time T / --sequence S with --collection")
        }
        if from == nil && collection == nil { throw ValidationError("restoring a version needs --collection") }
    }

    func run() throws {
        try runReportingErrors {
            let db = try location.open(DatabaseOptions(createIfMissing: from != nil))
            defer { try? db.close() }
            if from == nil, let collection, let sequence {
                let v = try db.restoreCollection(collection, toSequence: sequence)
                emit("\(collection): restored to sequence \(sequence) as version \(v)")
                return
            }
            if let collection, let selector = version.selector {
                let v = try db.restoreCollection(collection, to: selector)
                emit("\(collection): restored as version \(v)")
                return
            }
            guard let from else { return }
            let bar = ProgressBar(total: 0, unit: .bytes)
            let r = try db.restoreBackup(
                from: from, as: collection, toSequence: sequence, objectStorage: location.objectStorage, progress: bar.update)
            bar.finish()
            emit(
                String(
                    format: "restored %d files, %.1f MB in %.2f s (%.0f MB/s); version %llu of the backup", r.files, Double(r.bytes) / 1e6,
                    r.seconds, r.bytesPerSecond / 1e6, r.version))
        }
    }
}
