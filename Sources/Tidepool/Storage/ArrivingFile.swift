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
    /// The most one request of the background fill fetches.
    static let backgroundRequestBytes = 1 << 20

    let file: MappedFile
    var size: Int { file.bytes.count }
    private let source: Source?

    /// Where the bytes come from and where they go.
    struct Source: Sendable {
        /// Exactly the bytes `range` of the file.
        let fetch: @Sendable (Range<Int>) throws -> [UInt8]
        /// Writes fetched bytes into the mapped copy at an offset.
        let store: @Sendable ([UInt8], Int) throws -> Void
        /// Called once (`complete`), when every block has arrived and been checked (the copy
        /// becomes a complete cached file); never for a damaged copy.
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
    /// Whether a background fill was started (`fillInBackground` starts one per copy).
    private var filling = false
    /// Readers' `ensure` calls fetching now (the background fill waits for them).
    private var readersFetching = 0
    /// When the last reader's fetch ended: a search's next fetch (its re-rank rows after its
    /// lists' codes) follows within milliseconds, and the fill leaves it that gap.
    private var readersIdleSince = Date.distantPast
    /// Callers of `waitUntilComplete` waiting now (the fill then starts without its delay).
    private var completionWaiters = 0
    /// Whether `complete` has handed the copy over.
    private var handedOver = false

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
            readersFetching += 1
            condition.unlock()
            defer {
                condition.lock()
                readersFetching -= 1
                if readersFetching == 0 { readersIdleSince = Date() }
                condition.broadcast()
                condition.unlock()
            }
            try fetch(mine, source, claimed: true, width: 48)
        }
    }

    /// Fetches `ranges` on a thread of its own as a reader would (`ensure`): readers that need
    /// those bytes meanwhile wait for these requests instead of sending their own. A failure
    /// is left for the readers to meet again (and report).
    func prefetch(_ ranges: [Range<Int>]) {
        guard source != nil, !ranges.isEmpty else { return }
        let thread = Thread { [self] in _ = try? ensure(ranges) }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Fetches `blocks` (sorted; claimed in `inFlight` when `claimed`), contiguous runs of up to
    /// `requestBytes` together, `width` requests in flight. The background fill (unclaimed, 1 MiB
    /// requests) starts no request while a reader is fetching: a reader's few pages then do not
    /// queue behind a download's bandwidth.
    private func fetch(_ blocks: [Int], _ source: Source, claimed: Bool, width: Int) throws {
        var collected: [ClosedRange<Int>] = []
        let perRequest = (claimed ? Self.requestBytes : Self.backgroundRequestBytes) / Self.blockSize
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
            if !claimed {
                self.waitWhileReadersFetch()
                // A reader may have fetched these meanwhile (an opener's prefetch, a search).
                if self.condition.withLock({ run.allSatisfy { self.present.contains($0) } }) { return }
            }
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

    /// Waits while readers fetch and for `readerGap` after, but at most 100 ms per request:
    /// under steady re-ranks the fill still advances (and whoever waits for the whole file is
    /// not starved).
    private func waitWhileReadersFetch() {
        let limit = Date(timeIntervalSinceNow: 0.1)
        condition.lock()
        while Date() < limit {
            let gapEnds = readersIdleSince.addingTimeInterval(Self.readerGap)
            if readersFetching == 0 && Date() >= gapEnds { break }
            _ = condition.wait(until: readersFetching > 0 ? limit : min(limit, gapEnds))
        }
        condition.unlock()
    }

    /// How long after a reader's fetch the fill starts no request (a search's fetches come a
    /// few milliseconds apart: its lists' codes, then its re-rank rows).
    static let readerGap = 0.1
    /// How long the fill waits before its first request, unless someone waits for the whole
    /// file: the opener's first searches fetch what they need without sharing the bandwidth
    /// with a download (on a cold query node that is the first answer's latency).
    static let fillStartDelay = 0.2

    private func waitBeforeFilling(startedAt: Date) {
        let until = startedAt.addingTimeInterval(Self.fillStartDelay)
        condition.lock()
        while completionWaiters == 0 && Date() < until { _ = condition.wait(until: until) }
        condition.unlock()
    }

    private func release(_ run: ClosedRange<Int>, arrived: Bool, claimed: Bool) {
        condition.lock()
        for b in run {
            if claimed { inFlight.remove(b) }
            if arrived && !present.contains(b) {
                present.insert(b)
                missing -= 1
            }
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Hands a copy whose every block is here, and checked by its reader (`Segment.init`) or by
    /// the background fill's check, to `Source.completed` (it joins the cache), once; nothing
    /// for a copy still arriving or found damaged, so an unchecked copy is never cached.
    func complete() {
        guard let source else { return }
        let now: Bool = condition.withLock {
            guard missing == 0, damage == nil, !handedOver else { return false }
            handedOver = true
            return true
        }
        if now { source.completed() }
    }

    /// Fetches every block not here yet on a thread of its own, 8 requests in flight (readers'
    /// `ensure` calls go alongside), 64 MiB at a time, retrying a failed wave with backoff
    /// (0.5 s doubling to 30 s, logged), until the file is complete or nobody holds it any more
    /// (the thread keeps it only while a wave runs). Then runs `check` over the complete file (the
    /// checksums of sections opening did not verify); damage it finds is logged and thrown by
    /// every later `ensure`. A second call (another reader of the same copy) changes nothing.
    /// The fill starts at byte `from` (what readers will want soonest), runs to the end, then
    /// fetches what is missing from the start.
    func fillInBackground(logger: Logger, from: Int = 0, check: (@Sendable () throws -> Void)? = nil) {
        guard source != nil else { return }
        let start: Bool = condition.withLock {
            guard !filling else { return false }
            filling = true
            checking = true  // until the fill thread has checked the copy (or found none to run)
            backgroundHealthy = true
            return true
        }
        guard start else { return }
        let name = file.name
        let startedAt = Date()
        let thread = Thread { [weak self] in
            self?.waitBeforeFilling(startedAt: startedAt)
            var pause = 0.5
            var first = max(0, from) / Self.blockSize
            while true {
                // The file is held only inside a wave, never while the thread sleeps.
                switch Self.wave(self, from: first, logger: logger, name: name, pause: pause) {
                case .gone: return
                case .done: break
                case .next(let n):
                    first = n
                    pause = 0.5
                    continue
                case .failed:
                    Thread.sleep(forTimeInterval: pause)
                    pause = min(30, pause * 2)
                    self?.setBackgroundHealthy(true)
                    continue
                }
                break
            }
            Self.finishFill(self, check: check, logger: logger, name: name)
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    private enum WaveOutcome {
        case gone, done, next(Int), failed
    }

    private static func wave(_ file: ArrivingFile?, from first: Int, logger: Logger, name: String, pause: Double) -> WaveOutcome {
        guard let file else { return .gone }
        do {
            guard let next = try file.fillWave(from: first) else { return .done }
            return .next(next)
        } catch {
            file.setBackgroundHealthy(false)
            logger.warning("\(name): fetching the rest of the file failed (retrying in \(pause) s): \(error)")
            return .failed
        }
    }

    /// Runs the check over the complete file, records its outcome and, when it passed, hands
    /// the copy over (before waking anyone waiting, so a finished wait finds it cached).
    private static func finishFill(_ file: ArrivingFile?, check: (@Sendable () throws -> Void)?, logger: Logger, name: String) {
        guard let file else { return }
        file.setBackgroundHealthy(false)
        var found: (any Error)?
        if let check {
            do { try check() } catch {
                logger.error("\(name): damaged: \(error)")
                found = error
            }
        }
        file.condition.lock()
        file.damage = found
        file.condition.unlock()
        file.complete()
        file.condition.lock()
        file.checking = false
        file.condition.broadcast()
        file.condition.unlock()
    }

    /// Fetches the blocks still missing among the 64 MiB of blocks from `first`, claiming
    /// nothing and skipping nothing a reader is fetching (see the type's comment); returns the
    /// block to go on from, or nil once the whole file has arrived.
    private func fillWave(from first: Int) throws -> Int? {
        guard let source else { return nil }
        let blocks = (size + Self.blockSize - 1) / Self.blockSize
        guard first < blocks else { return condition.withLock { missing == 0 } ? nil : 0 }
        let wave = first..<min(blocks, first + 16 * Self.requestBytes / Self.blockSize)
        let wanted: [Int] = condition.withLock { wave.filter { !present.contains($0) } }
        if !wanted.isEmpty { try fetch(wanted, source, claimed: false, width: 8) }
        return wave.upperBound
    }

    private func setBackgroundHealthy(_ value: Bool) {
        condition.lock()
        backgroundHealthy = value
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until the whole file has arrived (fetching what is missing) and any pending check
    /// of it has finished; throws damage that check found, or `deadlineExceeded` once `deadline`
    /// passes while it waits for the background fill.
    func waitUntilComplete(deadline: Deadline? = nil) throws {
        guard source != nil else { return }
        condition.lock()
        defer { condition.unlock() }
        completionWaiters += 1
        condition.broadcast()  // a fill still in its start delay begins now
        defer { completionWaiters -= 1 }
        while missing > 0 && backgroundHealthy && damage == nil { try wait(deadline) }
        condition.unlock()
        do { try ensure([0..<size]) } catch {
            condition.lock()
            throw error
        }
        condition.lock()
        while checking { try wait(deadline) }  // the fill thread runs the check once every block is here
        if let damage { throw damage }
    }

    /// One wait on `condition` (held), of at most 50 ms, then the deadline's check.
    private func wait(_ deadline: Deadline?) throws {
        _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
        try deadline.check("waiting for the rows of \(file.name) to arrive")
    }
}
