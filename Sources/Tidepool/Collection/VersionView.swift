import Foundation

/// A past version opened for reads `asOf` it: its segments, opened afresh with that version's
/// deletions (the current segments' tombstones hold later ones), and on first need its id map.
/// Kept in a small cache per collection, so a run of reads of one version opens it once.
final class VersionView: @unchecked Sendable {
    let number: UInt64
    let snapshot: Snapshot
    private let ids = Locked<IDMap?>(nil)

    init(number: UInt64, segments: [Segment], flushedSeq: UInt64) {
        self.number = number
        // Persisted deletions carry sequence number 1: any visible sequence at or above it applies them.
        snapshot = Snapshot(visibleSeq: max(1, flushedSeq), containers: segments.map { .segment($0) })
    }

    /// Where `id` lives in this version (nil: not in it).
    func row(of id: DocumentID) throws -> RowKey? {
        if let map = ids.withLock({ $0 }) { return map[id].map(Self.key) }
        var map = IDMap()
        for (c, container) in snapshot.containers.enumerated() {
            guard case .segment(let s) = container else { continue }
            for r in 0..<s.rowCount where s.tombstones.seq(r) == 0 {
                map[try s.documentID(r)] = RowRef(container: UInt64(c), row: UInt32(r))
            }
        }
        ids.withLock { $0 = map }
        return map[id].map(Self.key)
    }

    private static func key(_ ref: RowRef) -> RowKey { RowKey(container: Int(ref.container), row: ref.row) }
}
