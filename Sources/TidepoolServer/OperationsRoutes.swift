import Foundation
import Hummingbird
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Tidepool

/// `/health`, `/ready` and `/metrics`: what load balancers and monitoring ask.
struct OperationsRoutes: Sendable {
    let served: any ServedCollections
    let api: API
    let state: ServerState
    let gauges = CollectionGauges()

    func register(_ router: Router<TidepoolRequestContext>) {
        // The server's release, and the caller's client release when its User-Agent names one
        // (`tidepool-client/0.2.0 …`), so that a support question starts with both.
        router.get("/health") { request, _ in
            var answer: [String: Any] = ["status": "ok", "version": tidepoolReleaseVersion]
            if let client = clientRelease(request.headers[.userAgent]) { answer["client_version"] = client }
            return jsonResponse(answer)
        }
        // No key needed, so no collection names: counts only. Degraded collections still serve
        // reads (and writes while their memtables have room), so the server stays ready.
        router.get("/ready") { _, _ in
            if state.shuttingDown.load(ordering: .relaxed) {
                return APIError(.serviceUnavailable, "shutting_down", "the server is shutting down").response()
            }
            let databases = served.openDatabases
            let degraded = databases.reduce(0) { $0 + $1.collectionHealth().values.filter { $0 != .ok }.count }
            let unavailable = databases.reduce(0) { $0 + $1.unavailableCollections.count }
            return jsonResponse([
                "status": degraded + unavailable == 0 ? "ready" : "degraded", "collections": served.openCollectionCount,
                "degraded_collections": degraded, "unavailable_collections": unavailable,
            ])
        }
        // Per-collection series name every collection: only a key that may see them all may read them.
        router.get("/metrics") { _, context in
            guard let key = context.apiKey else { throw APIError(.unauthorized, "unauthorized", "no API key") }
            guard key.collections == nil else {
                throw APIError(.forbidden, "forbidden", "/metrics needs a key that is not limited to some collections")
            }
            try await api.executor.run(key: key.secret, timeout: api.timeout) { gauges.record(served) }
            Gauge(label: "tidepool_requests_in_flight").record(api.executor.inFlight)
            // On a writer: query nodes holding a lease on a head (strong reads that ask nobody).
            Gauge(label: "tidepool_head_leases").record(api.leases.holderCount())
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: TidepoolMetrics.registry.emitToBuffer())))
        }
    }
}

extension Database {
    /// Each open collection's health, by name (asked on the event loop: it opens nothing).
    func collectionHealth() -> [String: CollectionHealth] { openCollections.mapValues(\.health) }
}

/// The per-collection gauges, and which collections have them, so a dropped collection's
/// series disappear instead of reporting its last values for ever.
final class CollectionGauges: Sendable {
    private static let labels = [
        "tidepool_documents", "tidepool_segments", "tidepool_wal_bytes", "tidepool_memtable_rows", "tidepool_memtable_indexed_rows",
        "tidepool_deleted_rows", "tidepool_collection_degraded", "tidepool_cold_segments", "tidepool_tier_bytes",
    ]
    private let recorded = NIOLockedValueBox<Set<String>>([])

    func record(_ served: any ServedCollections) {
        let databases = served.openDatabases
        let open = databases.flatMap { $0.openCollections }
        let names = Set(databases.flatMap { $0.collectionNames })
        recorded.withLockedValue { seen in
            for gone in seen.subtracting(names) {
                for label in Self.labels { Gauge(label: label, dimensions: [("collection", gone)]).destroy() }
            }
            seen = names
        }
        // Only the open ones: a query node opens a collection on its first use, not for metrics.
        for (name, c) in open {
            // Nothing here asks the store: on object storage the WAL's bytes are those last
            // listed (by `GET /v1/collections/{name}`), if any.
            let walKnown = c.walBytesKnown
            let info = c.info(listingWAL: false)
            let dims = [("collection", name)]
            Gauge(label: "tidepool_documents", dimensions: dims).record(info.count)
            Gauge(label: "tidepool_segments", dimensions: dims).record(info.segments.count)
            if walKnown { Gauge(label: "tidepool_wal_bytes", dimensions: dims).record(info.walBytes) }
            Gauge(label: "tidepool_memtable_rows", dimensions: dims).record(info.memtableRows)
            Gauge(label: "tidepool_memtable_indexed_rows", dimensions: dims).record(info.memtableIndexedRows)
            Gauge(label: "tidepool_deleted_rows", dimensions: dims).record(info.segments.reduce(0) { $0 + $1.deletedRows })
            Gauge(label: "tidepool_collection_degraded", dimensions: dims).record(c.health == .ok ? 0 : 1)
            // What the memory budget charged: section bytes of each segment in its tier.
            Gauge(label: "tidepool_cold_segments", dimensions: dims).record(info.segments.filter { $0.tier == .cold }.count)
            Gauge(label: "tidepool_tier_bytes", dimensions: dims).record(info.segments.reduce(0) { $0 + $1.tierBytes })
        }
        Gauge(label: "tidepool_collections_unavailable").record(databases.reduce(0) { $0 + $1.unavailableCollections.count })
        if let m = served.objectStorageMetrics {
            // The stalest of the databases this node follows.
            let followed = databases.filter(\.followsAWriter).compactMap(\.staleness)
            Self.record(m, staleness: followed.max())
        }
    }

    /// On object storage: the cache, the store's requests by kind with their latency, and on a
    /// query node how long ago it last caught up with its writer (its WAL lag, in time; the
    /// stalest collection's on a cluster node).
    static func record(_ m: ObjectStorageMetrics, staleness: Duration?) {
        Gauge(label: "tidepool_cache_bytes").record(m.cacheBytes)
        Gauge(label: "tidepool_cache_capacity_bytes").record(m.cacheCapacity)
        Gauge(label: "tidepool_cache_hits").record(m.cacheHits)
        Gauge(label: "tidepool_cache_misses").record(m.cacheMisses)
        Gauge(label: "tidepool_cache_evictions").record(m.cacheEvictions)
        for (operation, r) in m.requests {
            let dims = [("operation", operation)]
            Gauge(label: "tidepool_object_store_requests", dimensions: dims).record(r.count)
            Gauge(label: "tidepool_object_store_request_seconds_sum", dimensions: dims).record(r.totalSeconds)
            Gauge(label: "tidepool_object_store_request_seconds_max", dimensions: dims).record(r.maxSeconds)
        }
        if let staleness { Gauge(label: "tidepool_follow_staleness_seconds").record(staleness.inSeconds) }
    }
}

/// The release in a User-Agent of the form `tidepool-client/<release> …`; nil for any other
/// caller, and for a release that is not a short dotted version (it is echoed back).
func clientRelease(_ userAgent: String?) -> String? {
    guard let agent = userAgent?.split(separator: " ").first, agent.hasPrefix("tidepool-client/") else { return nil }
    let release = agent.dropFirst("tidepool-client/".count)
    guard (1...32).contains(release.count), release.allSatisfy({ $0.isASCII && ($0.isNumber || $0.isLetter || $0 == "." || $0 == "-") })
    else { return nil }
    return String(release)
}
