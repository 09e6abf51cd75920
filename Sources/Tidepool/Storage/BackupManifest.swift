import Foundation

/// What a backup holds: one collection's committed state, its files (segments, deleted-rows
/// files, the log after the flush) and a CRC32C per 4 MiB of each, so that a restore checks every
/// byte and names the file and offset of any damage. Written last, as `BACKUP`: a backup without
/// it was cut off and is refused. Format: `ChecksummedJSON` with magic "TPBACKUP".
struct BackupManifest: Codable, Equatable {
    struct File: Codable, Equatable {
        /// Relative to the collection's folder: `segments/…` or `wal/…`.
        var name: String
        var bytes: Int
        /// CRC32C of each `chunk`-byte piece, in order.
        var checksums: [UInt32]
    }

    /// Seconds since 1970.
    var created: Double
    /// The database it was taken from, for messages.
    var source: String
    var collection: String
    /// The source's version the segments are.
    var version: UInt64
    /// The state at that version (the log files carry what came after).
    var entry: Manifest.CollectionEntry
    var chunk: Int
    var files: [File]

    static let name = "BACKUP"
    static let folder = "files"
    static let magic: [UInt8] = Array("TPBACKUP".utf8)
    static let formatVersion: UInt32 = 1
    static let chunkBytes = 4 << 20

    /// The bytes of all files (checked not to overflow when decoded).
    var bytes: Int { files.reduce(0) { $0 &+ $1.bytes } }
    /// The largest `BACKUP` file read (its JSON lists files and checksums: ~11 bytes per 4 MiB).
    static let maxSize = 64 << 20

    func encoded() throws -> [UInt8] { try ChecksummedJSON.encode(self, magic: Self.magic, version: Self.formatVersion) }

    static func decode(_ bytes: [UInt8], file: String) throws -> BackupManifest {
        let m = try ChecksummedJSON.decode(
            BackupManifest.self, from: bytes, magic: magic, versions: formatVersion...formatVersion, file: file, what: "backup manifest")
        // Hostile or damaged names must not reach outside the collection's folder.
        var total = 0
        for f in m.files {
            let (sum, overflow) = total.addingReportingOverflow(f.bytes)
            guard !overflow, f.bytes >= 0 else {
                throw TidepoolError.corrupt(file: file, offset: ChecksummedJSON.headerSize, reason: "backup manifest file sizes overflow")
            }
            total = sum
        }
        guard m.chunk > 0, m.chunk <= 1 << 30,
            m.files.allSatisfy({ f in
                let parts = f.name.split(separator: "/", omittingEmptySubsequences: false)
                return parts.count == 2 && (parts[0] == "segments" || parts[0] == "wal") && !parts[1].isEmpty
                    && !parts[1].hasPrefix(".") && f.bytes >= 0
                    && f.checksums.count == f.bytes / m.chunk + (f.bytes % m.chunk == 0 ? 0 : 1)
            })
        else {
            throw TidepoolError.corrupt(
                file: file, offset: ChecksummedJSON.headerSize, reason: "backup manifest lists a file it cannot hold")
        }
        return m
    }
}
