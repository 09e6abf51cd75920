import Foundation

/// The database's table of contents: collections, their settings, their live
/// segments with tombstones, and how far the WAL has been flushed. Replaced
/// atomically as a whole (`StorageBackend.swapManifest`); encoded and decoded side by side below.
///
/// File: `ChecksummedJSON` with magic "TPMANIF1" (u32 version, u32 payload length, u32
/// CRC32C(payload), u32 reserved, JSON payload).
/// Version 2 is written only when a segment's deletions are in a file of their own
/// (`SegmentEntry.deletedFile`), so that code which knows only version 1 refuses it rather than
/// miss those deletions; version 3 only when a collection has snapshots, so that older code, which
/// would not keep their files, refuses it; anything else is version 1, as before.
struct Manifest: Codable, Equatable {
    struct SegmentEntry: Codable, Equatable {
        var id: UInt64
        var file: String
        var rows: Int
        var bytes: Int
        /// Rows deleted or replaced up to `flushedSeq`, ascending (empty when `deletedFile` holds them).
        var deleted: [UInt32]
        /// The file in `segments/` that holds them instead (`DeletedRowsFile`), once they are more
        /// than `DeletedRowsFile.inlineLimit`; nil while they are inline.
        var deletedFile: String?
    }

    struct CollectionEntry: Codable, Equatable {
        var name: String
        var dimension: Int
        var metric: Metric
        var config: CollectionConfig
        /// Every operation with a sequence number at or below this is in `segments`.
        var flushedSeq: UInt64
        var nextSegmentID: UInt64
        var segments: [SegmentEntry]
        /// Attribute types inferred or declared so far.
        var schema: [String: AttributeType]?
        /// On object storage: segment files replaced by a compaction, kept for readers of older
        /// manifest versions until `ObjectStorage.garbageGrace` has passed and no retained
        /// version names them (`Collection.collectRetiredFiles`).
        var retired: [RetiredFile]?
        /// The collection's version: counts the commits of its state (nil before versions existed: 0).
        var version: UInt64?
        /// When that version was committed (seconds since 1970).
        var versionTime: Double?
        /// Named versions that retention keeps (`Collection+Snapshots.swift`).
        var snapshots: [CollectionSnapshot]?
        /// Each restore: the log's last sequence number then, and the version it committed. Past
        /// one, the log after an older version no longer leads to the state (`Database+PointInTime.swift`).
        var restores: [RestorePoint]?

        /// The entry as a version record holds it: the state alone, without what only the
        /// current manifest tracks (retired files, snapshots).
        var asVersionState: CollectionEntry {
            var e = self
            e.retired = nil
            e.snapshots = nil
            e.restores = nil
            return e
        }

        /// Every file in `segments/` this state names.
        var files: [String] { segments.map(\.file) + segments.compactMap(\.deletedFile) }
    }

    /// Where a restore cut the log: the state after `seq` is version `version`'s, not the log's.
    struct RestorePoint: Codable, Equatable {
        var seq: UInt64
        var version: UInt64
    }

    /// A file a manifest version stopped naming, and when.
    struct RetiredFile: Codable, Equatable {
        var file: String
        /// The generation of the first manifest that does not name it (stamped by `persist`).
        var generation: UInt64
        /// Seconds since 1970 when it was retired.
        var time: Double
    }

    var generation: UInt64 = 0
    var collections: [CollectionEntry] = []
    /// On object storage: the URL the writer that committed this version serves on (query nodes
    /// ask it for its head and forward writes to it); nil when it serves none.
    var writer: String?

    static let magic: [UInt8] = Array("TPMANIF1".utf8)
    static let version: UInt32 = 3
    static let readableVersions: ClosedRange<UInt32> = 1...3

    func encoded() throws -> [UInt8] {
        let needsFiles = collections.contains { $0.segments.contains { $0.deletedFile != nil } }
        let needsSnapshots = collections.contains { !($0.snapshots ?? []).isEmpty }
        return try ChecksummedJSON.encode(self, magic: Manifest.magic, version: needsSnapshots ? 3 : needsFiles ? 2 : 1)
    }

    static func decode(_ bytes: [UInt8], file: String) throws -> Manifest {
        try ChecksummedJSON.decode(Manifest.self, from: bytes, magic: magic, versions: readableVersions, file: file, what: "manifest")
    }
}
