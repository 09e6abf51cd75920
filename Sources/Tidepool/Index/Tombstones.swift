import Atomics
import Foundation

/// Per-row deletion sequence numbers of one container (segment or memtable):
/// 0 means live; otherwise the sequence number of the operation that deleted or
/// replaced the row. A reader holding a snapshot at sequence `s` treats a row as
/// dead only if its deletion sequence is non-zero and at most `s`, so a search
/// sees one consistent moment even while writers delete.
final class Tombstones: @unchecked Sendable {
    let count: Int
    let storage: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    /// Whether `storage` came from calloc (else from `allocate`), for freeing it the same way.
    private let zeroedBySystem: Bool

    /// All rows live. Zeroed by the system (calloc) where it can: a memtable sized for millions of
    /// rows then commits no memory for the rows it never receives.
    init(count: Int) {
        self.count = count
        let n = max(1, count)
        if let zeroed = calloc(n, MemoryLayout<UnsafeAtomic<UInt64>.Storage>.stride) {
            storage = zeroed.bindMemory(to: UnsafeAtomic<UInt64>.Storage.self, capacity: n)
            zeroedBySystem = true
        } else {
            storage = .allocate(capacity: n)
            storage.initialize(repeating: UnsafeAtomic<UInt64>.Storage(0), count: n)
            zeroedBySystem = false
        }
    }

    deinit {
        if zeroedBySystem { free(storage) } else { storage.deallocate() }
    }

    @inline(__always)
    func seq(_ row: Int) -> UInt64 {
        UnsafeAtomic<UInt64>(at: storage + row).load(ordering: .relaxed)
    }

    /// Rows with a non-zero deletion sequence. Zero lets searches skip the per-row check, which
    /// is a cache miss per candidate on a large segment.
    private let marked = ManagedAtomic<Int>(0)
    var anyMarked: Bool { marked.load(ordering: .acquiring) > 0 }

    @inline(__always)
    func mark(_ row: Int, seq: UInt64) {
        let old = UnsafeAtomic<UInt64>(at: storage + row).exchange(seq, ordering: .relaxed)
        // Releasing: a reader whose snapshot sees the deletion sees the count too.
        if old == 0 && seq != 0 { marked.wrappingIncrement(ordering: .releasing) }
        if old != 0 && seq == 0 { marked.wrappingDecrement(ordering: .releasing) }
    }

    /// Rows deleted at or before `seq`, ascending.
    func deletedRows(upTo seq: UInt64) -> [UInt32] {
        var out: [UInt32] = []
        for r in 0..<count {
            let s = self.seq(r)
            if s != 0 && s <= seq { out.append(UInt32(r)) }
        }
        return out
    }

    func deadCount(at seq: UInt64) -> Int {
        var n = 0
        for r in 0..<count {
            let s = self.seq(r)
            if s != 0 && s <= seq { n += 1 }
        }
        return n
    }
}

/// A container's tombstones as seen by one snapshot.
struct DeadFilter {
    let tombstones: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
    let visibleSeq: UInt64
    /// False when no row was deleted when the filter was made: later deletions are newer than
    /// the snapshot, so invisible to it anyway.
    let any: Bool

    init(_ t: Tombstones, visibleSeq: UInt64) {
        tombstones = t.storage
        self.visibleSeq = visibleSeq
        any = t.anyMarked
    }

    @inline(__always)
    func isDead(_ row: UInt32) -> Bool {
        if !any { return false }
        let s = UnsafeAtomic<UInt64>(at: tombstones + Int(row)).load(ordering: .relaxed)
        return s != 0 && s <= visibleSeq
    }
}
