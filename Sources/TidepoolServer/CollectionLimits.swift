import Foundation
import NIOConcurrencyHelpers

/// Per-collection request rates (`--collection-rate`), so that one noisy tenant among many
/// collections cannot take the server from the others: a token bucket per collection, `rate`
/// requests a second with bursts of `burst`; a request beyond it is answered 429 `rate_limited`
/// with `Retry-After`, before any engine work. Only existing collections have buckets, and those
/// not used for a while are dropped (a full bucket is the same as none).
final class CollectionLimits: Sendable {
    private struct Bucket {
        var tokens: Double
        var at: Double
    }
    private let rate: Double
    private let burst: Double
    private let buckets = NIOLockedValueBox<(all: [String: Bucket], prunedAt: Double)>(([:], 0))

    /// nil when there is no limit.
    init?(rate: Double?, burst: Double?) {
        guard let rate, rate > 0 else { return nil }
        self.rate = rate
        self.burst = max(1, burst ?? rate)
    }

    /// Takes one request's token for `collection`, or throws 429 saying when to come back.
    func admit(_ collection: String, now: Double = ProcessInfo.processInfo.systemUptime) throws(APIError) {
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
            guard b.tokens >= 1 else {
                state.all[collection] = b
                return (1 - b.tokens) / rate
            }
            b.tokens -= 1
            state.all[collection] = b
            return nil
        }
        if let wait {
            var e = APIError(
                .tooManyRequests, "rate_limited",
                "collection '\(collection)' is limited to \(rate) requests a second (bursts of \(Int(burst))); retry later")
            e.retryAfter = max(1, Int(wait.rounded(.up)))
            throw e
        }
    }
}
