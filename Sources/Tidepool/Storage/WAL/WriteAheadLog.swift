import Atomics
import Foundation
import Logging
import TidepoolS3

/// A collection's write-ahead log with group commit.
///
/// Writers call `commit`; the first writer to find no leader becomes the leader,
/// takes every pending operation, writes them as one `write`, syncs once as the
/// policy says, applies them to memory in sequence order, and wakes the rest.
/// So concurrent writers share one fsync, readers only ever see durable data,
/// and memory is always applied in log order.
///
/// A failed write (a full disk, an I/O error) fails every operation not yet acknowledged, and the
/// next `commit` first cuts what the failed write may have left in the file and syncs it again:
/// writes resume once the disk works again, without a reopen, and no operation reported as
/// failed can reappear after a crash.
final class WriteAheadLog: @unchecked Sendable {
    struct Pending {
        let seq: UInt64
        let payload: [UInt8]
        let op: WALOperation
    }

    let storage: any StorageBackend
    let folder: String
    let dimension: Int
    let collection: String
    let policy: SyncPolicy
    let syncInterval: Double

    /// Applies a durable batch to memory; called by the leader, one batch at a time, in order.
    var apply: (@Sendable ([Pending]) -> Void)?

    private let cond = NSCondition()
    private var nextSeq: UInt64
    private var pending: [Pending] = []
    private var leaderActive = false
    /// The last sequence number written durably. Changed under `cond`; also read without it
    /// (`acknowledgedSeq`, from health checks and the writer's head on the event loop), since a
    /// recovery holds `cond` for a store round trip.
    private(set) var durableSeq: UInt64 {
        get { durable.load(ordering: .acquiring) }
        set { durable.store(newValue, ordering: .releasing) }
    }
    private let durable: ManagedAtomic<UInt64>
    /// The error of the last failed write, until a recovery cuts what it left. Changed under
    /// `cond`; read by `problem` under a lock of its own, for the same reason.
    private var failure: TidepoolError? {
        get { failureLock.withLock { storedFailure } }
        set { failureLock.withLock { storedFailure = newValue } }
    }
    private var storedFailure: TidepoolError?
    private let failureLock = NSLock()
    /// Bumped by a failed write: operations queued in an earlier epoch have failed.
    private var epoch = 0
    private var closed = false
    /// When the last batch was taken for writing (for `commitPacing`).
    private var lastWriteStart: ContinuousClock.Instant?
    /// How many writes the last batch held (for `commitPacing`).
    private var lastBatchCount = 0
    let logger: Logger

    /// Guards the current log file: held by the leader while writing and by `syncIfDirty`.
    private let fileLock = NSLock()
    private var log: AppendLog?
    private var dirty = false
    private var lastSync = Date()
    private var rotateRequested = false
    /// The log file's length before the last batch's append: what a failed write is cut back to.
    private var sizeBeforeAppend = 0
    /// A failed sync of acknowledged writes (`batched`), retried by the next sync. Under a lock
    /// of its own: `problem` reads it for health checks, which must not wait for a write in
    /// flight (on object storage a PUT, seconds when the store is slow).
    private var syncFailure: TidepoolError? {
        get { syncFailureLock.withLock { storedSyncFailure } }
        set { syncFailureLock.withLock { storedSyncFailure = newValue } }
    }
    private var storedSyncFailure: TidepoolError?
    private let syncFailureLock = NSLock()
    /// On object storage, the batch of the last failed write, whose object may exist anyway.
    private var unresolved: [Pending] = []

    init(
        storage: any StorageBackend, folder: String, dimension: Int, collection: String, policy: SyncPolicy,
        syncInterval: Double, lastSeq: UInt64, logger: Logger = Logger(label: "tidepool")
    ) throws {
        self.logger = logger
        self.storage = storage
        self.folder = folder
        self.dimension = dimension
        self.collection = collection
        self.policy = policy
        self.syncInterval = syncInterval
        self.nextSeq = lastSeq + 1
        self.durable = ManagedAtomic(lastSeq)
        // On object storage each batch starts its own file, so opening writes nothing.
        if !storage.logsAreObjects { try startFile(firstSeq: lastSeq + 1) }
    }

    /// The sequence number of the last operation acknowledged (durable and applied to memory).
    var acknowledgedSeq: UInt64 { durableSeq }

    /// The sequence number of the last operation written.
    var lastSeq: UInt64 { cond.lock(); defer { cond.unlock() }; return nextSeq - 1 }

    private func startFile(firstSeq: UInt64) throws {
        let name = folder + "/" + WALFormat.fileName(firstSeq: firstSeq)
        if storage.logsAreObjects {
            // The object is created by the batch's sync, only if no object of that name exists.
            let newLog = try storage.openAppendLog(name)
            try WALFileHeader(dimension: dimension, firstSeq: firstSeq).encoded().withUnsafeBytes { try newLog.append($0) }
            log = newLog
            return
        }
        // A file with this first sequence number can only be a leftover with no frames in it
        // (replay read every frame up to firstSeq - 1). Anything more is never overwritten:
        // another writer, or damage replay did not see.
        if let size = try? storage.size(of: name) {
            guard size <= WALFileHeader.size else {
                throw TidepoolError.corrupt(
                    file: storage.displayPath(name), offset: WALFileHeader.size,
                    reason: "a new WAL file would start over an existing one that holds \(size - WALFileHeader.size) bytes of frames")
            }
            try storage.delete(name)
        }
        let newLog = try storage.openAppendLog(name)
        try WALFileHeader(dimension: dimension, firstSeq: firstSeq).encoded().withUnsafeBytes { try newLog.append($0) }
        if policy != .none { try newLog.sync() }
        log?.close()
        log = newLog
    }

    /// Logs `op`, waits until it is as durable as the policy promises and applied to memory, and
    /// returns its sequence number. Throws the write's error if it failed (nothing of `op` is
    /// applied, and after a crash it does not come back).
    @discardableResult
    func commit(_ op: WALOperation) throws -> UInt64 {
        let payload = WALFormat.encodePayload(op, dimension: dimension)
        cond.lock()
        defer { cond.unlock() }
        if closed { throw TidepoolError.closed("collection '\(collection)' is closed") }
        // Another writer took over (object storage): nothing more is tried or acknowledged.
        if let failure, case .fenced = failure { throw failure }
        if failure != nil { try recoverLocked() }
        let seq = nextSeq
        nextSeq += 1
        let myEpoch = epoch
        pending.append(Pending(seq: seq, payload: payload, op: op))
        while durableSeq < seq {
            if epoch != myEpoch { throw failure ?? TidepoolError.closed("collection '\(collection)': WAL write failed") }
            if leaderActive {
                cond.wait()
                continue
            }
            leaderActive = true
            pacePendingLocked()
            lastWriteStart = .now
            let batch = pending
            pending = []
            lastBatchCount = batch.count
            cond.unlock()
            var err: TidepoolError?
            do { try write(batch) } catch let e as TidepoolError { err = e } catch {
                err = .io(path: folder, operation: "WAL write", errno: EIO)
            }
            if err == nil { apply?(batch) }
            cond.lock()
            leaderActive = false
            if let err {
                // Every operation not yet acknowledged fails; their sequence numbers are reused.
                logger.error("collection '\(collection)': WAL write failed, \(batch.count + pending.count) operations refused: \(err)")
                failure = err
                epoch += 1
                // On object storage the create may have happened though it failed: recovery looks.
                if storage.logsAreObjects { unresolved = batch }
                pending.removeAll()
                nextSeq = durableSeq + 1
            } else if let last = batch.last {
                durableSeq = last.seq
            }
            cond.broadcast()
        }
        return seq
    }

    /// Before a leader takes its batch (`StorageBackend.commitPacing`, object storage): it waits
    /// until `minSpacing` has passed since the last write started, and up to `gather` for as many
    /// writes as the last batch held (writers that batch acknowledged are sending their next
    /// ones; without the wait they would split into two alternating halves, each waiting for
    /// the other's PUT). A lone writer never waits: its last batch held one write. Caller holds
    /// `cond`; it is released while waiting, and writes arriving meanwhile join the batch.
    private func pacePendingLocked() {
        let (gather, minSpacing) = storage.commitPacing
        guard gather > .zero || minSpacing > .zero else { return }
        let start = ContinuousClock.now
        let spacingEnd = lastWriteStart.map { $0 + minSpacing } ?? start
        let gatherEnd = start + gather
        while true {
            let now = ContinuousClock.now
            let gathered = pending.count >= lastBatchCount || now >= gatherEnd
            if gathered && now >= spacingEnd { return }
            cond.unlock()
            Thread.sleep(forTimeInterval: 0.0005)
            cond.lock()
        }
    }

    /// After a failed write: cuts the log file back to its length before that write (dropping a
    /// partial or unacknowledged frame) and syncs it; throws if the disk still fails. Caller holds
    /// `cond`, and no leader is active (a failure ends the leader's turn).
    private func recoverLocked() throws {
        fileLock.lock()
        defer { fileLock.unlock() }
        guard let log else { throw TidepoolError.closed("collection '\(collection)': WAL is closed") }
        if let objectLog = log as? ObjectLog, let first = unresolved.first, let last = unresolved.last,
            objectLog.name.hasSuffix("/" + WALFormat.fileName(firstSeq: first.seq))
        {
            try resolveFailedCreateLocked(objectLog, lastSeq: last.seq)
            return
        }
        do {
            if log.size != sizeBeforeAppend { try log.truncate(to: sizeBeforeAppend) }
            try log.sync()
        } catch {
            failure = error as? TidepoolError ?? .io(path: storage.displayPath(log.name), operation: "WAL recovery", errno: EIO)
            throw failure ?? error
        }
        logger.info(
            "collection '\(collection)': WAL writes resume after a failed write (\(log.name) cut back to \(sizeBeforeAppend) bytes)")
        failure = nil
    }

    /// After a failed write on object storage: the object it was creating is looked up. Absent,
    /// its sequence numbers are free again. Created by this writer after all (the store applied
    /// the request but its answer was lost), its operations are durable and will be replayed by
    /// any later open, so they are applied to memory now, keeping memory equal to the log (the
    /// callers were told the write failed; its outcome was in fact unknown to them). Created by
    /// another writer: this one is fenced. Caller holds `cond` and `fileLock`.
    private func resolveFailedCreateLocked(_ objectLog: ObjectLog, lastSeq: UInt64) throws {
        let outcome: ObjectLog.Outcome
        do { outcome = try objectLog.outcomeOfFailedCreate() } catch {
            failure = error as? TidepoolError ?? .io(path: storage.displayPath(objectLog.name), operation: "WAL recovery", errno: EIO)
            throw failure ?? error
        }
        switch outcome {
        case .absent:
            logger.info("collection '\(collection)': WAL writes resume; \(objectLog.name) was not created")
        case .ours:
            logger.warning(
                "collection '\(collection)': \(objectLog.name) was created although its write failed; its \(unresolved.count) operations are applied"
            )
            apply?(unresolved)
            durableSeq = lastSeq
            nextSeq = lastSeq + 1
        case .anothers:
            failure = .fenced(
                "WAL object \(storage.displayPath(objectLog.name)) was written by another writer; this one acknowledges nothing more")
            unresolved = []
            throw failure ?? .closed(collection)
        }
        unresolved = []
        failure = nil
    }

    /// What keeps the log from working as it should, if anything: a failed write not yet
    /// recovered, or a failed sync of acknowledged writes.
    var problem: String? {
        if let f = failure { return "WAL write failed (\(f)); the next write retries" }
        if let f = syncFailure { return "WAL sync failed (\(f)); retrying" }
        return nil
    }

    private func write(_ batch: [Pending]) throws {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(batch.reduce(0) { $0 + $1.payload.count + 17 })
        for p in batch { WALFormat.appendFrame(seq: p.seq, type: p.op.typeCode, payload: p.payload, to: &buffer) }
        fileLock.lock()
        defer { fileLock.unlock() }
        // Nothing of this batch is in the file yet: a failure from here on is cut back to this.
        sizeBeforeAppend = log?.size ?? 0
        if storage.logsAreObjects, let first = batch.first {
            // One object per group commit, named by its first sequence number; creating it is the
            // commit point, whatever the sync policy.
            try startFile(firstSeq: first.seq)
            guard let log else { throw TidepoolError.closed("collection '\(collection)': WAL is closed") }
            sizeBeforeAppend = log.size
            try buffer.withUnsafeBytes { try log.append($0) }
            try log.sync()
            storage.waitBeforeAcknowledging()
            return
        }
        if rotateRequested, let first = batch.first {
            try log?.sync()
            try startFile(firstSeq: first.seq)
            rotateRequested = false
        }
        guard let log else { throw TidepoolError.closed("collection '\(collection)': WAL is closed") }
        sizeBeforeAppend = log.size
        try buffer.withUnsafeBytes { try log.append($0) }
        switch policy {
        case .always:
            try log.sync()
        case .batched:
            if Date().timeIntervalSince(lastSync) >= syncInterval {
                try log.sync()
                lastSync = Date()
                dirty = false
                syncFailure = nil
            } else {
                dirty = true
            }
        case .none:
            dirty = true
        }
    }

    /// Starts a new log file before the next batch, so older files can be deleted once flushed.
    func requestRotation() {
        fileLock.lock()
        rotateRequested = true
        fileLock.unlock()
    }

    /// Starts a new log file now if no write is in progress, so that a fully flushed file can
    /// be deleted without waiting for the next write.
    func rotateIfIdle() {
        if storage.logsAreObjects { return }  // every batch is a file of its own already
        cond.lock()
        defer { cond.unlock() }
        guard !leaderActive, pending.isEmpty, !closed, failure == nil else { return }
        fileLock.lock()
        defer { fileLock.unlock() }
        do {
            try log?.sync()
            try startFile(firstSeq: nextSeq)
            rotateRequested = false
        } catch {
            // The current file stays in use; it will be rotated before the next batch.
        }
    }

    /// For the `batched` policy: fsyncs if anything was written since the last sync.
    func syncIfDirty(force: Bool = false) {
        fileLock.lock()
        defer { fileLock.unlock() }
        guard dirty, let log else { return }
        if policy == .batched || force {
            do {
                try log.sync()
                dirty = false
                lastSync = Date()
                syncFailure = nil
            } catch {
                // Acknowledged writes are not durable yet: say so, and retry at the next tick.
                if syncFailure == nil { logger.error("collection '\(collection)': WAL sync failed: \(error)") }
                syncFailure = error as? TidepoolError ?? .io(path: storage.displayPath(log.name), operation: "fdatasync", errno: EIO)
            }
        }
    }

    /// Deletes log files whose every frame is at or below `flushedSeq`.
    func deleteFiles(upTo flushedSeq: UInt64) {
        guard let names = try? storage.list(folder) else { return }
        let seqs = names.compactMap { n -> (String, UInt64)? in
            guard let s = WALFormat.firstSeq(fromFileName: n) else { return nil }
            return (n, s)
        }
        let flushed = (0..<max(0, seqs.count - 1)).filter { seqs[$0 + 1].1 - 1 <= flushedSeq }.map { folder + "/" + seqs[$0].0 }
        // On object storage each is a request: 16 at a time (hundreds may wait after a takeover).
        _ = runOnThreads(flushed.count, width: storage.logsAreObjects ? 16 : 1) { [storage] i in try? storage.delete(flushed[i]) }
    }

    func close() throws {
        cond.lock()
        while leaderActive { cond.wait() }
        closed = true
        cond.unlock()
        fileLock.lock()
        defer { fileLock.unlock() }
        if let log {
            try log.sync()
            log.close()
        }
        log = nil
    }
}
