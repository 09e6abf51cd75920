import Foundation
import NIOConcurrencyHelpers
import Tidepool

/// Per-collection limits, so that one noisy tenant among many collections cannot take the
/// server from the others, each answered 429 with `Retry-After` before any engine work:
/// requests a second (`--collection-rate`, 429 `rate_limited`), request-body bytes a second
/// (`--collection-bytes-rate`, 429 `rate_limited`), and rows written but not yet indexed
/// (`--collection-backlog`: upserts beyond it get 429 `backlog_full` until the indexer catches
/// up, since every search scans those rows exactly).
struct CollectionLimits: Sendable {
    var requests: TokenBuckets?
    var bytes: TokenBuckets?
    var backlog: Int?

    init(rate: Double?, burst: Double?, bytesRate: Double? = nil, bytesBurst: Double? = nil, backlog: Int? = nil) {
        requests = rate.map { TokenBuckets(rate: $0, burst: burst ?? $0, unit: "requests") }
        bytes = bytesRate.map { TokenBuckets(rate: $0, burst: bytesBurst ?? $0, unit: "bytes") }
        self.backlog = backlog
    }

    /// Takes one request's token for `collection`, or throws 429 saying when to come back.
    func admitRequest(_ collection: String) throws(APIError) { try requests?.take(1, for: collection) }

    /// Takes `count` body bytes' tokens for `collection`, or throws 429.
    func admitBytes(_ count: Int, for collection: String) throws(APIError) { try bytes?.take(Double(count), for: collection) }

    /// Throws 429 `backlog_full` when `collection` holds more unindexed rows than allowed.
    func admitUpsert(into collection: Tidepool.Collection) throws(APIError) {
        guard let backlog else { return }
        let waiting = collection.unindexedRows
        guard waiting > backlog else { return }
        var e = APIError(
            .tooManyRequests, "backlog_full",
            "collection '\(collection.name)' has \(waiting) rows waiting to be indexed (the limit is \(backlog)); retry shortly")
        e.retryAfter = 1
        throw e
    }
}

/// A token bucket per collection: `rate` units a second with bursts of `burst`. Only existing
/// collections get buckets (the callers check), and those that have refilled are dropped (a
/// full bucket is the same as none).
final class TokenBuckets: Sendable {
    private struct Bucket {
        var tokens: Double
        var at: Double
    }
    let rate: Double
    let burst: Double
    let unit: String
    private let buckets = NIOLockedValueBox<(all: [String: Bucket], prunedAt: Double)>(([:], 0))

    init(rate: Double, burst: Double, unit: String) {
        self.rate = rate
        self.burst = max(1, burst)
        self.unit = unit
    }

    /// Takes `amount` tokens (at most a full bucket's worth: a request larger than a burst waits
    /// for a full bucket), or throws 429 saying when to come back.
    func take(_ amount: Double, for collection: String, now: Double = ProcessInfo.processInfo.systemUptime) throws(APIError) {
        let need = min(amount, burst)
        let wait: Double? = buckets.withLockedValue { state in
            // Forget buckets that have refilled (they admit as a new one would), at most once a
            // second, so a request never pays for the whole table.
            if state.all.count > 10_000 && now - state.prunedAt >= 1 {
                state.all = state.all.filter { $0.value.tokens + (now - $0.value.at) * rate < burst }
                state.prunedAt = now
            }
            var b = state.all[collection] ?? Bucket(tokens: burst, at: now)
            b.tokens = min(burst, b.tokens + (now - b.at) * rate)
            b.at = now
            guard b.tokens >= need else {
                state.all[collection] = b
                return (need - b.tokens) / rate
            }
            b.tokens -= need
            state.all[collection] = b
            return nil
        }
        if let wait {
            var e = APIError(
                .tooManyRequests, "rate_limited",
                "collection '\(collection)' is limited to \(Self.format(rate)) \(unit) a second (bursts of \(Self.format(burst))); retry later"
            )
            e.retryAfter = max(1, Int(wait.rounded(.up)))
            throw e
        }
    }

    private static func format(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
}
