import Atomics
import Foundation

/// Where `prewarm` leaves what it read (its page loads must not be optimized away).
private let prewarmSink = ManagedAtomic<UInt8>(0)

extension Collection {
    /// Brings the collection's segment files into memory ahead of queries: on object storage each
    /// is already a local copy (fetched when the collection opened), so this reads every page of
    /// every segment once (`madvise(WILLNEED)`, then one byte per page), and the first queries do
    /// not wait on page faults. Returns the bytes touched. Stops with `deadlineExceeded` when
    /// `deadline` passes between segments.
    @discardableResult
    public func prewarm(deadline: Deadline? = nil) throws -> Int {
        let segments = snapshot().segments
        var touched = 0
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        for s in segments {
            try deadline.check("prewarming collection '\(name)'")
            try s.awaitVectors(deadline: deadline)
            let bytes = s.file.bytes
            guard let base = bytes.baseAddress, bytes.count > 0 else { continue }
            _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_WILLNEED)
            var sum: UInt8 = 0
            var offset = 0
            while offset < bytes.count {
                sum &+= bytes[offset]
                offset += page
            }
            // Stored where the optimizer cannot prove it unread, so the loads are kept.
            prewarmSink.store(sum, ordering: .relaxed)
            touched += bytes.count
        }
        return touched
    }
}
