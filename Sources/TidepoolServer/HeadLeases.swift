import NIOConcurrencyHelpers
import Tidepool

/// On a writer: the query nodes that hold a lease on a collection's head, so that their strong
/// reads need no request at all. A node subscribes by long-polling the head
/// (`GET …/head?subscription=…`); each answer carries the head and a lease (`lease_ms`) during
/// which the node may take that head, as it last heard it, as everything acknowledged.
///
/// What makes that safe is the rule `publish` enforces: before the writer acknowledges a write
/// to a collection, every node whose lease on it has not expired has confirmed (by its next
/// poll) that it knows a head that includes the write. A node that does not confirm holds
/// acknowledgements until its lease expires (at most `maxLease`), then is no longer waited for.
///
/// Timing: a node counts its lease from when it sent the poll; the writer counts from when it
/// answered (later), and registers a node as soon as its poll arrives, before reading the
/// head it answers with, so every acknowledgement after that waits for the node. A lease never
/// outlasts the writer's own right to answer (`Database.writerHeadLease`), which a successor
/// waits out before its first acknowledgement.
final class HeadLeases: Sendable {
    /// The longest lease granted.
    static let maxLease: Duration = .milliseconds(1000)
    /// The longest a poll is held waiting for a new head.
    static let maxHold: Duration = .milliseconds(250)
    /// The most subscriptions holding leases on one collection; more polls get no lease (their
    /// nodes ask the writer per read instead).
    static let maxHolders = 256

    private struct Holder {
        var expires: ContinuousClock.Instant
        var known: WriterHead
        /// The poll that registered it last: an older poll of the same subscription still in
        /// flight (a retry overlapped it) changes nothing when it ends.
        var poll: UInt64
    }
    /// Collection → subscription → holder.
    private let holders = NIOLockedValueBox<[String: [String: Holder]]>([:])
    private let pollCounter = NIOLockedValueBox<UInt64>(0)
    /// Fired when a head is published (held polls answer).
    private let published = AsyncSignal()
    /// Fired when a poll arrives (publishes waiting for confirmations look again).
    private let confirmed = AsyncSignal()

    /// Answers a poll of subscription `id` on `collection` from a node that knows `known`:
    /// registers the node, then returns once the head is past `known` or `hold` has passed,
    /// with the head and the lease granted (nil when the writer cannot vouch for its head now,
    /// or the collection is gone).
    func poll(
        collection: String, subscription id: String, known: WriterHead, hold: Duration,
        current: @Sendable () -> (head: WriterHead, validFor: Duration)?
    ) async -> (head: WriterHead, lease: Duration)? {
        // Registered at once with the longest lease it could get: an acknowledgement from now
        // on waits for it. `previous` is the lease it holds already, kept if it gets no new one.
        let poll = pollCounter.withLockedValue { c -> UInt64 in
            c += 1
            return c
        }
        let registered = holders.withLockedValue { h -> (Bool, ContinuousClock.Instant?) in
            let now = ContinuousClock.now
            h[collection, default: [:]] = h[collection, default: [:]].filter { $0.value.expires > now }
            let previous = h[collection]?[id]?.expires
            // Every holder can hold acknowledgements up to its lease: a bounded number of them.
            guard previous != nil || (h[collection]?.count ?? 0) < Self.maxHolders else { return (false, nil) }
            h[collection, default: [:]][id] = Holder(expires: max(previous ?? now, now + Self.maxLease), known: known, poll: poll)
            return (true, previous)
        }
        guard registered.0 else { return nil }
        let previous = registered.1
        confirmed.fire()
        let until = ContinuousClock.now + min(hold, Self.maxHold)
        while true {
            let generation = published.generation
            guard let answer = current() else {
                noLease(collection, id, poll, previous)
                return nil
            }
            let left = until - .now
            if !known.covers(answer.head) || left <= .zero {
                let lease = min(Self.maxLease, answer.validFor - .milliseconds(100))
                guard lease > .zero else {
                    noLease(collection, id, poll, previous)
                    return nil
                }
                // The node counts the lease from before it sent the poll, so it expires there
                // no later than now + lease; the provisional registration can shrink to that.
                holders.withLockedValue { h in
                    guard h[collection]?[id]?.poll == poll else { return }
                    h[collection]?[id]?.expires = max(previous ?? .now, .now + lease)
                }
                return (answer.head, lease)
            }
            await published.wait(after: generation, timeout: left)
        }
    }

    /// A poll answered without a lease: the node keeps only the lease it held before, and a
    /// publish waiting on the provisional registration looks again.
    private func noLease(_ collection: String, _ id: String, _ poll: UInt64, _ previous: ContinuousClock.Instant?) {
        holders.withLockedValue { h in
            guard h[collection]?[id]?.poll == poll else { return }
            if let previous { h[collection]?[id]?.expires = previous } else { h[collection]?[id] = nil }
        }
        confirmed.fire()
    }

    /// Returns once every node holding an unexpired lease on `collection` has confirmed a head
    /// covering `head` (nil: the collection is gone, so every holder's lease must run out).
    func publish(collection: String, head: WriterHead?) async {
        let anyone = holders.withLockedValue { !($0[collection]?.isEmpty ?? true) }
        guard anyone else { return }
        published.fire()
        while true {
            let generation = confirmed.generation
            let now = ContinuousClock.now
            let earliest: ContinuousClock.Instant? = holders.withLockedValue { h in
                let waiting = (h[collection] ?? [:]).values.filter { holder in
                    holder.expires > now && !(head.map { holder.known.covers($0) } ?? false)
                }
                return waiting.map(\.expires).min()
            }
            guard let earliest else { return }
            await confirmed.wait(after: generation, timeout: earliest - now)
        }
    }

    /// How many unexpired leases `collection` has, or all collections together (for tests and metrics).
    func holderCount(_ collection: String? = nil) -> Int {
        let now = ContinuousClock.now
        return holders.withLockedValue { h in
            h.filter { collection == nil || $0.key == collection }.values.reduce(0) { $0 + $1.values.filter { $0.expires > now }.count }
        }
    }
}
