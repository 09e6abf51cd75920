import Foundation

/// How long a collection's versions are kept. A version is kept while it is among the newest
/// `keepLast`, or younger than `keepFor`; the current version and every snapshot's version are
/// always kept. The files of a version that is no longer kept are deleted once no kept version,
/// snapshot or current state names them (and, on object storage, after the grace period that
/// protects readers of older manifests).
public struct VersionRetention: Sendable, Equatable {
    /// The newest versions kept whatever their age (at least 1: the current one).
    public var keepLast: Int
    /// Versions younger than this are kept.
    public var keepFor: Duration

    public init(keepLast: Int = 10, keepFor: Duration = .seconds(2 * 3600)) {
        self.keepLast = max(1, keepLast)
        self.keepFor = max(.zero, keepFor)
    }

    /// Only the current version: replaced files go at once (snapshots still keep theirs).
    public static let currentOnly = VersionRetention(keepLast: 1, keepFor: .zero)
}

/// Which committed state of a collection a read sees.
public enum VersionSelector: Sendable, Equatable {
    /// Version number `n` exactly (an error when it is no longer kept).
    case version(UInt64)
    /// The newest version committed at or before this time.
    case time(Date)
}

/// One kept version of a collection: a committed state (its segments and their deletions).
/// Every flush, compaction, settings change and restore commits a new one; writes not flushed
/// yet belong to no version (a snapshot flushes first).
public struct CollectionVersion: Sendable, Equatable {
    /// Counts up from 1, one per commit of the collection's state.
    public var number: UInt64
    /// When it was committed.
    public var time: Date
    /// Live documents in it.
    public var documents: Int
    /// Its segment files.
    public var segments: Int
    /// The snapshots that pin it.
    public var snapshots: [String]
}

/// A named, pinned version of a collection that retention never removes.
public struct CollectionSnapshot: Sendable, Equatable, Codable {
    public var name: String
    public var version: UInt64
    /// When the snapshot was taken (seconds since 1970).
    public var created: Double
}

/// What creating a branch did.
public struct BranchReport: Sendable, Equatable {
    /// The source's version the branch starts from.
    public var version: UInt64
    /// Files the branch shares with its source (hard links in a local directory).
    public var filesShared: Int
    /// Bytes written to create it (manifest and version records; segment data is never copied
    /// where the storage can share files).
    public var bytesWritten: Int
    /// Bytes the storage holds twice because it cannot share files: 0 in a local directory (hard
    /// links); on object storage each file is copied inside the store (CopyObject), none of
    /// its bytes passing through this process.
    public var bytesCopied: Int
    public var seconds: Double
}

/// `2026-12-07T10:00:00.123Z`: how versions' and snapshots' times are written (to the
/// millisecond; `VersionSelector.time` with such a time selects that version).
public func rfc3339(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: date)
}

/// Reads an RFC 3339 time, with or without fractional seconds (`2026-12-07T10:00:00Z`,
/// `…00.123Z`, `…00+01:00`); nil for anything else, or anything over 64 bytes.
public func parseRFC3339(_ s: String) -> Date? {
    guard s.utf8.count <= 64 else { return nil }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.date(from: s) ?? ISO8601DateFormatter().date(from: s)
}
