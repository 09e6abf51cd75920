import Foundation

/// Lets a writer on object storage answer "what have you acknowledged?" (`Database.writerHead`)
/// so that a query node's strong read needs one request to the writer instead of a round of
/// store probes, and keeps that answer safe across a takeover without a clock shared between
/// machines:
///
/// - The writer answers only within `answerWindow` of a confirmation: a probe that found no
///   manifest version after its own (a new writer commits one before anything else), counted
///   from when the probe was sent.
/// - A writer that takes over from one that could answer holds every acknowledgement until
///   `duration` after its own first manifest commit (`holdAcknowledgements`).
///
/// So by the time a new writer acknowledges anything, its predecessor has stopped answering,
/// and an answer never omits a write acknowledged before it was asked for.
final class WriterLease: @unchecked Sendable {
    /// How long a new writer holds acknowledgements after taking over from an answering one
    /// (it adds to the write pause of every takeover: kept short, with a quarter of margin).
    static let duration: Duration = .milliseconds(1000)
    /// How long after a confirmation the writer still answers (less than `duration`: margin).
    static let answerWindow: Duration = .milliseconds(750)
    /// A confirmation older than this is renewed by the next request for the head (a writer
    /// asked without pause probes about four times a second).
    static let renewAfter: Duration = .milliseconds(250)

    private let cond = NSCondition()
    private var confirmedAt: ContinuousClock.Instant?
    private var renewing = false
    private var holdUntil: ContinuousClock.Instant?

    /// Acknowledgements (`waitForHold`) wait until `duration` from now.
    func holdAcknowledgements() {
        cond.withLock { holdUntil = .now + Self.duration }
    }

    /// Blocks until the hold set by `holdAcknowledgements`, if any, has passed.
    func waitForHold() {
        guard let until = cond.withLock({ holdUntil }) else { return }
        let left = until - .now
        if left > .zero { Thread.sleep(forTimeInterval: left.inSeconds) }
    }

    /// Whether the writer may answer for its head now without a store request (a confirmation
    /// younger than `answerWindow`): never blocks.
    var isFresh: Bool {
        cond.withLock { confirmedAt.map { ContinuousClock.now - $0 < Self.answerWindow } ?? false }
    }

    /// How much longer the writer may answer without a new confirmation (nil: not at all now).
    var remainingWindow: Duration? {
        cond.withLock {
            guard let c = confirmedAt else { return nil }
            let left = Self.answerWindow - (ContinuousClock.now - c)
            return left > .zero ? left : nil
        }
    }

    /// Renews the confirmation on a background queue when it is older than `renewAfter` and no
    /// renewal is in flight: a writer asked often renews ahead of time, so no request waits for
    /// the probe.
    func renewInBackgroundIfDue(_ probe: @escaping @Sendable () throws -> Bool) {
        let claimed = cond.withLock {
            guard !renewing, confirmedAt.map({ ContinuousClock.now - $0 >= Self.renewAfter }) ?? true else { return false }
            renewing = true
            return true
        }
        guard claimed else { return }
        DispatchQueue.global(qos: .userInitiated).async { _ = try? self.finishRenewal(probe) }
    }

    /// Whether the writer may answer for its head now, renewing the confirmation first when it
    /// is older than `renewAfter`. `probe` returns true when no newer manifest version exists
    /// (one caller probes at a time; the others wait for its result).
    func isHeld(renewingWith probe: () throws -> Bool) throws -> Bool {
        cond.lock()
        while true {
            if let c = confirmedAt, ContinuousClock.now - c < Self.renewAfter {
                cond.unlock()
                return true
            }
            guard renewing else { break }
            cond.wait()
        }
        renewing = true
        cond.unlock()
        return try finishRenewal(probe)
    }

    /// Runs the probe of a renewal this caller claimed (`renewing` set) and records its result.
    private func finishRenewal(_ probe: () throws -> Bool) throws -> Bool {
        let sent = ContinuousClock.now
        let result = Result { try probe() }
        cond.lock()
        renewing = false
        switch result {
        case .success(true): confirmedAt = max(confirmedAt ?? sent, sent)
        case .success(false): confirmedAt = nil  // a newer manifest: no answers from now on
        case .failure: break
        }
        let held = confirmedAt.map { ContinuousClock.now - $0 < Self.answerWindow } ?? false
        cond.broadcast()
        cond.unlock()
        return try result.get() && held
    }
}
