import Foundation

/// Keeps a read-only database on object storage caught up with its writer: one refresh at a
/// time, shared by every caller whose request began before it started (a burst of strong
/// reads costs one round of probes), and an optional timer that refreshes in the background.
final class Follower: @unchecked Sendable {
    private let cond = NSCondition()
    /// When the refresh in flight started.
    private var running: ContinuousClock.Instant?
    /// When the last refresh that succeeded started: every write acknowledged before then is seen.
    private var lastCompleted: ContinuousClock.Instant?
    private var timer: DispatchSourceTimer?

    /// Runs `refresh`, unless one that started at or after `since` has completed (then returns at
    /// once) or is in flight (then waits for it).
    func catchUp(since: ContinuousClock.Instant, _ refresh: () throws -> Void) throws {
        cond.lock()
        while true {
            if let done = lastCompleted, done >= since {
                cond.unlock()
                return
            }
            guard running != nil else { break }
            cond.wait()
        }
        let start = ContinuousClock.now
        running = start
        cond.unlock()
        var failure: (any Error)?
        do { try refresh() } catch { failure = error }
        cond.lock()
        running = nil
        if failure == nil { lastCompleted = max(lastCompleted ?? start, start) }
        cond.broadcast()
        cond.unlock()
        if let failure { throw failure }
    }

    /// Starts `refresh` on a thread of its own unless one is in flight (or starting): an
    /// eventual read that finds the state somewhat stale answers at once and leaves the catching
    /// up to this.
    func catchUpInBackground(_ refresh: @escaping @Sendable () throws -> Void) {
        let start: Bool = cond.withLock {
            guard running == nil, !backgroundStarting else { return false }
            backgroundStarting = true
            return true
        }
        guard start else { return }
        DispatchQueue.global(qos: .utility).async {
            self.cond.withLock { self.backgroundStarting = false }
            try? self.catchUp(since: .now, refresh)
        }
    }
    private var backgroundStarting = false

    /// How far behind the writer the state may be: the time since the last successful refresh
    /// started (nil before the first).
    var staleness: Duration? { cond.withLock { lastCompleted.map { ContinuousClock.now - $0 } } }

    /// Calls `tick` every `interval` on a utility queue until `stop`.
    func start(every interval: Duration, _ tick: @escaping @Sendable () -> Void) {
        let t = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        let ns = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
        t.schedule(deadline: .now() + .nanoseconds(ns), repeating: .nanoseconds(ns))
        t.setEventHandler(handler: tick)
        t.resume()
        cond.withLock {
            timer?.cancel()
            timer = t
        }
    }

    func stop() {
        cond.withLock {
            timer?.cancel()
            timer = nil
        }
    }
}
