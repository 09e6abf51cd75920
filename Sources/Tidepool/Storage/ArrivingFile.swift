import Foundation
import Logging
import TidepoolS3

/// A file mapped whole while its bytes may still be arriving from a slower store. A reader asks
/// for the ranges it is about to read (`ensure`), which are fetched then if they have not
/// arrived; the rest can arrive in the background (`fillInBackground`). This is how a query node
/// answers from an IVF segment before its f32 rows are here: the lists and codes are fetched
/// first, and a re-rank fetches only its candidates' rows.
///
/// Bytes arrive in blocks of `blockSize`; a block is fetched by one reader at a time (others
/// wait for it). The background fill claims nothing: a reader never waits behind its large
/// requests, and fetches the few blocks it needs itself (a block may then arrive twice, with the
/// same bytes). A local file is complete from the start (`init(complete:)`), and `ensure` on it
/// costs one check.
/// `@unchecked Sendable`: its state is guarded by `condition`.
final class ArrivingFile: @unchecked Sendable {
    static let blockSize = 4 << 10
    /// A page: a re-rank's candidates are scattered rows, each costing a request of its own
    /// whatever the block size, so small blocks fetch less for the same latency.
    /// The most one request fetches (contiguous missing blocks are fetched together up to this).
    static let requestBytes = 4 << 20

    let file: MappedFile
    var size: Int { file.bytes.count }
    private let source: Source?

    /// Where the bytes come from and where they go.
    struct Source: Sendable {
        /// Exactly the bytes `range` of the file.
        let fetch: @Sendable (Range<Int>) throws -> [UInt8]
        /// Writes fetched bytes into the mapped copy at an offset.
        let store: @Sendable ([UInt8], Int) throws -> Void
        /// Called once, when every block has arrived and passed the check given to
        /// `fillInBackground` (the copy becomes a complete cached file); never for a damaged copy.
        let completed: @Sendable () -> Void
    }

    private let condition = NSCondition()
    private var present: Bitmap
    private var inFlight: Bitmap
    private var missing: Int
    /// Damage found when the last bytes arrived (`fillInBackground`'s check): every later use throws it.
    private var damage: (any Error)?
    /// Whether a check of the arrived bytes is pending or running (`waitUntilComplete` waits for it).
    private var checking = false
    /// Whether a background fill is running and its last round did not fail (then
    /// `waitUntilComplete` waits for it rather than fetching the same bytes again).
    private var backgroundHealthy = false
    private var cancelled = false

    /// A file whose bytes are all here.
    init(complete file: MappedFile) {
        self.file = file
        source = nil
        present = Bitmap(count: 0)
        inFlight = Bitmap(count: 0)
        missing = 0
    }

    /// A mapping of `file.bytes.count` bytes of which none has arrived yet.
    init(arriving file: MappedFile, source: Source) {
        self.file = file
        self.source = source
        let blocks = (file.bytes.count + Self.blockSize - 1) / Self.blockSize
        present = Bitmap(count: blocks)
        inFlight = Bitmap(count: blocks)
        missing = blocks
    }

    var isComplete: Bool {
        guard source != nil else { return true }
        condition.lock()
        defer { condition.unlock() }
        return missing == 0 && !checking && damage == nil  // damaged: readers go through `ensure`, which throws it
    }

    /// Blocks until the bytes of `ranges` have arrived, fetching those no one is fetching yet
    /// (48 requests in flight, contiguous blocks together: a re-rank's 40 scattered rows cost
    /// one round trip). Throws when a fetch fails (nothing of it is marked arrived, so a later
    /// call fetches again) or when the arrived file was found damaged.
    func ensure(_ ranges: [Range<Int>]) throws {
        guard let source else { return }
        var blocks: [Int] = []
        for r in ranges where !r.isEmpty {
            let lo = max(0, r.lowerBound) / Self.blockSize
            let hi = (min(size, r.upperBound) - 1) / Self.blockSize
            if lo <= hi { blocks.append(contentsOf: lo...hi) }
        }
        blocks.sort()
        while true {
            condition.lock()
            if let damage {
                condition.unlock()
                throw damage
            }
            var mine: [Int] = []
            var othersFetching = false
            var previous = -1
            for b in blocks where b != previous {
                previous = b
                if present.contains(b) { continue }
                if inFlight.contains(b) {
                    othersFetching = true
                } else {
                    inFlight.insert(b)
                    mine.append(b)
                }
            }
            if mine.isEmpty {
                if othersFetching {
                    condition.wait()
                    condition.unlock()
                    continue
                }
                condition.unlock()
                return
            }
            condition.unlock()
            try fetch(mine, source, claimed: true, width: 48)
        }
    }

    /// Fetches `blocks` (sorted; claimed in `inFlight` when `claimed`), contiguous runs together,
    /// `width` requests in flight.
    private func fetch(_ blocks: [Int], _ source: Source, claimed: Bool, width: Int) throws {
        var collected: [ClosedRange<Int>] = []
        let perRequest = Self.requestBytes / Self.blockSize
        for b in blocks {
            if let last = collected.last, last.upperBound + 1 == b, last.count < perRequest {
                collected[collected.count - 1] = last.lowerBound...b
            } else {
                collected.append(b...b)
            }
        }
        let size = self.size
        let runs = collected
        let results = runOnThreads(runs.count, width: width) { i -> Void in
            let run = runs[i]
            let range = (run.lowerBound * Self.blockSize)..<min(size, (run.upperBound + 1) * Self.blockSize)
            do {
                let bytes = try source.fetch(range)
                try source.store(bytes, range.lowerBound)
            } catch {
                self.release(run, arrived: false, claimed: claimed)
                throw error
            }
            self.release(run, arrived: true, claimed: claimed)
        }
        for r in results { try r.get() }
    }

    private func release(_ run: ClosedRange<Int>, arrived: Bool, claimed: Bool) {
        condition.lock()
        var finished = false
        for b in run {
            if claimed { inFlight.remove(b) }
            if arrived && !present.contains(b) {
                present.insert(b)
                missing -= 1
                finished = missing == 0 && !checking  // with a check pending, it completes after the check
            }
        }
        condition.broadcast()
        condition.unlock()
        if finished { source?.completed() }
    }

    /// Fetches every block not here yet on a thread of its own, 8 requests in flight (readers'
    /// `ensure` calls go alongside), retrying a failed round with backoff (0.5 s doubling to
    /// 30 s, logged) until the file is complete or `cancel` is called. Then runs `check` over the
    /// complete file (the checksums of sections opening did not verify); damage it finds is
    /// logged and thrown by every later `ensure`.
    func fillInBackground(logger: Logger, check: (@Sendable () throws -> Void)? = nil) {
        guard source != nil else { return }
        condition.lock()
        checking = check != nil
        backgroundHealthy = true
        condition.unlock()
        let thread = Thread { [self] in
            var pause = 0.5
            while !isCancelled {
                do {
                    try fillRound()
                    break
                } catch {
                    setBackgroundHealthy(false)
                    logger.warning("\(file.name): fetching the rest of the file failed (retrying in \(pause) s): \(error)")
                    Thread.sleep(forTimeInterval: pause)
                    pause = min(30, pause * 2)
                    setBackgroundHealthy(true)
                }
            }
            setBackgroundHealthy(false)
            guard !isCancelled, let check else { return }
            var found: (any Error)?
            do { try check() } catch {
                logger.error("\(file.name): damaged: \(error)")
                found = error
            }
            condition.lock()
            damage = found
            checking = false
            condition.broadcast()
            condition.unlock()
            if found == nil { source?.completed() }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// One pass over the blocks still missing, 64 MiB at a time (so `cancel` takes effect
    /// soon), 8 requests in flight; claims nothing and skips nothing a reader is fetching (see
    /// the type's comment), so when it returns every block has arrived.
    private func fillRound() throws {
        guard let source else { return }
        let blocksPerWave = 16 * Self.requestBytes / Self.blockSize
        let blocks = (size + Self.blockSize - 1) / Self.blockSize
        var first = 0
        while first < blocks, !isCancelled {
            let wave = first..<min(blocks, first + blocksPerWave)
            let wanted: [Int] = condition.withLock { wave.filter { !present.contains($0) } }
            if !wanted.isEmpty { try fetch(wanted, source, claimed: false, width: 8) }
            first = wave.upperBound
        }
    }

    private func setBackgroundHealthy(_ value: Bool) {
        condition.lock()
        backgroundHealthy = value
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until the whole file has arrived (fetching what is missing) and any pending check
    /// of it has finished; throws damage that check found.
    func waitUntilComplete() throws {
        guard source != nil else { return }
        condition.lock()
        while missing > 0 && backgroundHealthy && !cancelled && damage == nil { condition.wait() }
        condition.unlock()
        try ensure([0..<size])
        condition.lock()
        defer { condition.unlock() }
        while checking && !cancelled { condition.wait() }
        if let damage { throw damage }
    }

    /// Stops a background fill (its requests in flight finish; their bytes are kept).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    private var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }
}
