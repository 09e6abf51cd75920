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
        abstract: "Recreate a collection from a backup, checking every byte against its checksums.",
        discussion: """
            Opens the database as its writer (stop a server on a local directory first, or restore \
            into another directory). A damaged or missing file fails with its name and offset and \
            creates nothing.
            """)

    @OptionGroup var location: DatabaseLocationOptions
    @Option(help: "The backup: a directory or s3://bucket/prefix.") var from: String
    @Option(help: "The name to restore it as (default: the name it was backed up with).") var collection: String?

    func run() throws {
        try runReportingErrors {
            let db = try location.open(DatabaseOptions())
            defer { try? db.close() }
            let bar = ProgressBar(total: 0, unit: .bytes)
            let r = try db.restoreBackup(from: from, as: collection, objectStorage: location.objectStorage, progress: bar.update)
            bar.finish()
            emit(
                String(
                    format: "restored %d files, %.1f MB in %.2f s (%.0f MB/s); version %llu of the backup", r.files, Double(r.bytes) / 1e6,
                    r.seconds, r.bytesPerSecond / 1e6, r.version))
        }
    }
}
