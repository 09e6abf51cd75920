import Foundation

/// One committed state of a collection, written to `versions/<number>` beside its segments
/// right after the manifest that commits it (a crash in between is mended when the collection
/// next opens for writing: the current state is always in the manifest). Reads `asOf` a version,
/// restores and branches start from these records; retention deletes them
/// (`Collection+Garbage.swift`). Format: `ChecksummedJSON` with magic "TPVERSN1".
struct VersionRecord: Codable, Equatable {
    var number: UInt64
    /// Seconds since 1970.
    var time: Double
    /// Live documents in it (rows less persisted deletions).
    var documents: Int
    /// The state: segments with their deletions, settings, flushed sequence number.
    var entry: Manifest.CollectionEntry

    static let magic: [UInt8] = Array("TPVERSN1".utf8)
    static let formatVersion: UInt32 = 1

    static let folder = "versions"
    static func fileName(_ number: UInt64) -> String { String(format: "%020llu", number) }
    static func number(fromFileName name: String) -> UInt64? {
        guard name.utf8.count == 20, name.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return UInt64(name)
    }

    func encoded() throws -> [UInt8] { try ChecksummedJSON.encode(self, magic: Self.magic, version: Self.formatVersion) }

    static func decode(_ bytes: [UInt8], file: String) throws -> VersionRecord {
        try ChecksummedJSON.decode(
            VersionRecord.self, from: bytes, magic: magic, versions: formatVersion...formatVersion, file: file, what: "version record")
    }
}
