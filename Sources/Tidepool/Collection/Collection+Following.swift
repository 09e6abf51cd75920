import Foundation

extension Collection {
    /// A read-only collection on object storage catching up with its writer: applies the WAL
    /// objects created since, probing the name that follows the last sequence number applied
    /// (the writer names each object by its first sequence number) until one is missing.
    /// Returns how many operations it applied. Costs one `GET` per object, and one more that
    /// finds nothing.
    func followLog() throws -> Int {
        guard wal == nil else { return 0 }  // the writer is always current
        var applied = 0
        while true {
            let next = state.withLock { visibleSeq } + 1
            let name = folder + "/wal/" + WALFormat.fileName(firstSeq: next)
            let mapped: MappedFile
            do { mapped = try storage.map(name) } catch TidepoolError.io(_, _, ENOENT) {
                return applied
            }
            let ops = try WriteAheadLog.operations(
                in: mapped.bytes, file: storage.displayPath(name), expectedFirstSeq: next, dimension: dimension, afterSeq: next - 1)
            guard !ops.isEmpty else { return applied }
            state.withLock {
                for (seq, op) in ops where seq == visibleSeq + 1 { applyLocked(op, seq: seq) }
                scheduleIndexingLocked()
            }
            applied += ops.count
        }
    }
}
