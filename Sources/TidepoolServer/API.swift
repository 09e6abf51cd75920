import Foundation
import Hummingbird
import Metrics
import NIOCore
import NIOPosix
import Tidepool

/// The `/v1` routes. Bodies are JSON objects; unknown fields are refused (400), so a typo
/// never silently changes what a request means. Every response reports `took_ms`.
struct API: Sendable {
    /// The database holding each collection.
    let served: any ServedCollections
    let executor: EngineExecutor
    let maxBody: Int
    /// Engine time per request; the engine is given the same deadline.
    let timeout: TimeAmount
    let limits: RequestLimits
    /// A query node's requests to its writer (its head, for strong reads).
    let peer = WriterPeer()
    /// On a writer: query nodes' leases on heads, honoured before each acknowledgement.
    let leases = HeadLeases()
    /// On a query node: its leases on its writer's heads.
    let subscriptions = HeadSubscriptions()
    /// Per-collection limits (none by default).
    var collectionLimits = CollectionLimits(rate: nil, burst: nil)

    func register(_ router: Router<TidepoolRequestContext>) {
        registerMethodNotAllowed(router)
        let v1 = router.group("v1")
        registerVersions(v1)
        v1.get("collections") { _, context in
            try await run(context, write: false, collection: nil) { _ in
                // A name listed may have been dropped meanwhile: it is left out, not an error.
                ["collections": try served.collectionNames().compactMap { name in try? describe(collection(name)) }]
            }
        }
        v1.post("collections") { request, context in
            let body = try await object(request, allowed: ["name", "dimension", "metric", "config"])
            let name = try string(body, "name")
            return try await run(context, write: true, collection: name, status: .created) { _ in
                let metric = try metricValue(body["metric"] ?? .string("cosine"))
                let config = try collectionConfig(body["config"])
                return try describe(
                    served.createCollection(name, dimension: Int(try int(body, "dimension")), metric: metric, config: config))
            }
        }
        v1.get("collections/:name") { _, context in
            let name = try context.parameters.require("name")
            return try await run(context, write: false, collection: name) { _ in try describe(collection(name)) }
        }
        v1.post("collections/:name/compact") { _, context in
            let name = try context.parameters.require("name")
            return try await run(context, write: true, collection: name, status: .accepted) { _ in
                try collection(name).requestCompaction()
                return ["compacting": name]
            }
        }
        v1.post("collections/:name/prewarm") { _, context in
            let name = try context.parameters.require("name")
            return try await run(context, write: false, collection: name) { deadline in
                let coll = try collection(name)
                return ["prewarmed_bytes": try coll.prewarm(deadline: deadline), "segments": coll.info().segments.count]
            }
        }
        // For query nodes: what this writer has acknowledged in the collection (strong reads).
        v1.get("collections/:name/head") { request, context in
            let name = try context.parameters.require("name")
            if let subscription = request.uri.queryParameters.get("subscription") {
                return try await pollHead(request, context: context, collection: name, subscription: subscription)
            }
            // Asked once per strong read on a query node: answered here when that needs no store
            // request (most of the time), without the hop to the engine threads.
            if let key = context.apiKey, key.allows(collection: name),
                let head = served.openDatabase(for: name)?.writerHeadWithoutWaiting(collection: name)
            {
                return jsonResponse(["manifest_version": head.manifestVersion, "wal_head": head.walHead])
            }
            return try await run(context, write: false, collection: name) { _ in
                guard let head = try served.database(for: name).writerHead(collection: name) else {
                    // Not a server failure: this node is not (or no longer) the writer to ask.
                    throw APIError(
                        .conflict, "not_the_writer", "this node cannot vouch for the head of '\(name)' (it is not its writer now)")
                }
                return ["manifest_version": head.manifestVersion, "wal_head": head.walHead]
            }
        }
        v1.delete("collections/:name") { _, context in
            let name = try context.parameters.require("name")
            return try await write(context, collection: name) { _ in
                try served.dropCollection(name)
                return ["deleted": name]
            }
        }
        v1.patch("collections/:name") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["config"], collection: name)
            return try await run(context, write: true, collection: name) { _ in
                guard case .object(let c)? = body["config"] else { throw APIError.badRequest("'config' must be an object") }
                try checkKeys(c, IndexSettings.keys, "config")
                let settings = try IndexSettings(c)
                let coll = try collection(name)
                try coll.updateIndexSettings(settings.apply)
                return describe(coll)
            }
        }
        v1.post("collections/:name/upsert") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["documents", "create"], collection: name)
            return try await write(context, collection: name) { _ in
                guard case .array(let items)? = body["documents"] else { throw APIError.badRequest("'documents' must be an array") }
                let docs = try items.enumerated().map { try document($0.element, at: $0.offset) }
                var create: (Metric, CollectionConfig)?
                if let raw = body["create"] {
                    guard case .object(let c) = raw else { throw APIError.badRequest("'create' must be an object") }
                    try checkKeys(c, ["metric", "config"], "create")
                    let config = try collectionConfig(c["config"])
                    try config.validate()
                    create = (try metricValue(c["metric"] ?? .string("cosine")), config)
                }
                if docs.isEmpty { return ["upserted": 0] }
                var existing: Tidepool.Collection?
                do { existing = try collection(name) } catch TidepoolError.collectionNotFound where create != nil { existing = nil }
                if existing == nil, let (metric, config) = create {
                    guard let dimension = docs.first(where: \.hasVector)?.vector.count else {
                        throw APIError.badRequest("'create' needs a document with a vector, to give the collection its dimension")
                    }
                    // Parallel first writes race to create it: the loser uses the winner's collection,
                    // once the winner has finished creating it (its name is taken first).
                    do {
                        existing = try served.createCollection(name, dimension: dimension, metric: metric, config: config)
                    } catch TidepoolError.collectionExists {
                        let until = ContinuousClock.now + .seconds(5)
                        while existing == nil {
                            do { existing = try collection(name) } catch TidepoolError.collectionNotFound where ContinuousClock.now < until
                            {
                                Thread.sleep(forTimeInterval: 0.005)
                            }
                        }
                    }
                }
                let coll: Tidepool.Collection
                if let existing {
                    coll = existing
                    // `create` describes the collection the caller expects: a different metric
                    // would make every later distance mean something else.
                    if let (metric, _) = create, metric != coll.metric {
                        throw APIError(
                            .conflict, "collection_mismatch",
                            "collection '\(name)' exists with metric \(coll.metric.rawValue), not \(metric.rawValue) as 'create' asks")
                    }
                } else {
                    throw TidepoolError.collectionNotFound(name)
                }
                try collectionLimits.admitUpsert(into: coll)
                try coll.upsert(docs)
                return ["upserted": docs.count]
            }
        }
        v1.post("collections/:name/delete") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["ids", "filter"], collection: name)
            return try await write(context, collection: name) { deadline in
                let coll = try collection(name)
                switch (body["ids"], body["filter"]) {
                case (.array(let ids)?, nil): return ["deleted": try coll.delete(ids: ids.map(documentID))]
                case (nil, let f?): return ["deleted": try coll.delete(filter: try filter(f), deadline: deadline)]
                default: throw APIError.badRequest("give exactly one of 'ids' (array) or 'filter'")
                }
            }
        }
        v1.post("collections/:name/get") { request, context in
            let start = ContinuousClock.now
            let name = try context.parameters.require("name")
            let body = try await object(
                request, allowed: ["ids", "include_vectors", "vector_encoding", "consistency", "as_of"], collection: name)
            return try await read(body, collection: name, request: request, context: context, since: start) { _ in
                guard case .array(let ids)? = body["ids"] else { throw APIError.badRequest("'ids' must be an array") }
                let vectors = try bool(body, "include_vectors", default: true)
                let encoding = try VectorEncoding(body)
                let coll = try collection(name)
                try limits.check(ids: ids.count, vectors: vectors ? ids.count * coll.dimension : 0)
                let wanted = try ids.map(documentID)
                let docs = try asOfSelector(body["as_of"]).map { try coll.get(ids: wanted, asOf: $0) } ?? coll.get(ids: wanted)
                return ["documents": docs.map { encode($0, vectors: vectors ? encoding : nil) }]
            }
        }
        v1.post("collections/:name/scan") { request, context in
            let start = ContinuousClock.now
            let name = try context.parameters.require("name")
            let body = try await object(
                request, allowed: ["filter", "after", "limit", "include_vectors", "vector_encoding", "consistency", "as_of"],
                collection: name)
            return try await read(body, collection: name, request: request, context: context, since: start) { deadline in
                let coll = try collection(name)
                let limit = try int(body, "limit", default: 1000)
                let vectors = try bool(body, "include_vectors", default: false)
                let encoding = try VectorEncoding(body)
                try limits.check(scanLimit: limit, vectors: vectors ? Int(clamping: limit) * coll.dimension : 0)
                let page = try coll.scan(
                    filter: try body["filter"].map(filter), after: try body["after"].map(documentID), limit: Int(limit),
                    includeVectors: vectors, deadline: deadline, asOf: try asOfSelector(body["as_of"]))
                return [
                    "documents": page.documents.map { encode($0, vectors: vectors ? encoding : nil) },
                    "next": page.next.map(idJSON) ?? NSNull(),
                ]
            }
        }
        v1.post("collections/:name/count") { request, context in
            let start = ContinuousClock.now
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["filter", "consistency", "as_of"], collection: name)
            return try await read(body, collection: name, request: request, context: context, since: start) { deadline in
                let n = try collection(name).count(
                    filter: try body["filter"].map(filter), deadline: deadline, asOf: try asOfSelector(body["as_of"]))
                return ["count": n]
            }
        }
        v1.post("collections/:name/facets") { request, context in
            let start = ContinuousClock.now
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["attribute", "filter", "limit", "consistency", "as_of"], collection: name)
            return try await read(body, collection: name, request: request, context: context, since: start) { deadline in
                guard case .string(let attribute)? = body["attribute"] else { throw APIError.badRequest("'attribute' must be a string") }
                let counts = try collection(name).facets(
                    attribute, filter: try body["filter"].map(filter), limit: Int(try int(body, "limit", default: 10)), deadline: deadline,
                    asOf: try asOfSelector(body["as_of"]))
                return ["facets": counts.map { ["value": attributeJSON($0.value), "count": $0.count] as [String: Any] }]
            }
        }
        v1.post("collections/:name/query") { request, context in
            let start = ContinuousClock.now
            let name = try context.parameters.require("name")
            let body = try await object(
                request,
                allowed: [
                    "vector", "vector_b64", "vectors", "vectors_b64", "k", "ef", "exact", "filter", "include",
                    "text", "text_match", "fusion", "vector_weight", "candidates", "rerank", "nprobe", "consistency", "as_of",
                    "vector_encoding",
                ], collection: name)
            return try await read(body, collection: name, request: request, context: context, since: start) { deadline in
                try query(try collection(name), body, deadline: deadline)
            }
        }
    }

    /// Collection `name`, from the database that holds it.
    func collection(_ name: String) throws -> Tidepool.Collection { try served.database(for: name).collection(name) }

    // MARK: Execution

    /// Checks the key's rights, runs the engine call on the engine threads (admitted against
    /// the in-flight limits only now, with the body already read) under the request deadline,
    /// and wraps the result with the server-side time.
    func run(
        _ context: TidepoolRequestContext, write: Bool, collection: String?, status: HTTPResponse.Status = .ok,
        _ body: @escaping @Sendable (Deadline) throws -> [String: Any]
    ) async throws -> Response {
        jsonResponse(try await execute(context, write: write, collection: collection, body), status: status)
    }

    /// `run`'s work, answering the result rather than the response.
    func execute(
        _ context: TidepoolRequestContext, write: Bool, collection: String?, _ body: @escaping @Sendable (Deadline) throws -> [String: Any]
    ) async throws -> [String: Any] {
        guard let key = context.apiKey else { throw APIError(.unauthorized, "unauthorized", "no API key") }
        if write && key.role != .readWrite { throw APIError(.forbidden, "forbidden", "this API key is read-only") }
        if let collection, !key.allows(collection: collection) {
            throw APIError(.forbidden, "forbidden", "this API key has no access to collection '\(collection)'")
        }
        // Only collections that exist have buckets: made-up names cannot grow the table.
        if let collection, served.hasCollection(collection) { try collectionLimits.admitRequest(collection) }
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = Deadline.after(.nanoseconds(timeout.nanoseconds))
        let attempt = { try await executor.run(key: key.secret, write: write, timeout: timeout) { ResultBox(try body(deadline)) }.value }
        var result: [String: Any]
        do {
            result = try await attempt()
        } catch TidepoolError.closed where !write && collection != nil {
            // A cluster node swaps a collection's database when it takes the collection over or
            // starts following it; a read that held the old one runs once more on the new one
            // (reads change nothing, so running one twice is harmless). A node shutting down
            // fails the same way again.
            result = try await attempt()
        } catch TidepoolError.fenced(let why) {
            // Another node took the collection over: a cluster node follows it from now on (the
            // write was not applied, so it may go to the new writer).
            if let collection { _ = try? await NIOThreadPool.singleton.runIfActive { served.writerWasSuperseded(collection) } }
            throw TidepoolError.fenced(why)
        }
        if collection == nil, write == false, let all = result["collections"] as? [[String: Any]], !key.allows(collection: "") {
            result["collections"] = all.filter { key.allows(collection: $0["name"] as? String ?? "") }
        }
        result["took_ms"] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return result
    }

    /// Answers 405 with `Allow` for the methods a known path does not take (the router alone
    /// would say 404, as if the path did not exist).
    func registerMethodNotAllowed(_ router: Router<TidepoolRequestContext>) {
        let routes: [(String, [HTTPRequest.Method])] = [
            ("/v1/collections", [.get, .post]), ("/v1/collections/:name", [.get, .patch, .delete]),
            ("/v1/collections/:name/upsert", [.post]), ("/v1/collections/:name/delete", [.post]),
            ("/v1/collections/:name/get", [.post]), ("/v1/collections/:name/scan", [.post]),
            ("/v1/collections/:name/query", [.post]), ("/v1/collections/:name/head", [.get]),
            ("/v1/collections/:name/prewarm", [.post]), ("/v1/collections/:name/compact", [.post]), ("/health", [.get]), ("/ready", [.get]),
            ("/metrics", [.get]),
        ]
        for (path, allowed) in routes {
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] where !allowed.contains(method) {
                router.on(RouterPath(path), method: method) { _, _ in
                    var r = APIError(.methodNotAllowed, "method_not_allowed", "\(path) takes \(allow)").response()
                    r.headers[.allow] = allow
                    return r
                }
            }
        }
    }

    /// The request's body as a JSON object with no field outside `allowed`; its bytes count
    /// against `collection`'s byte rate, if it has one.
    func object(_ request: Request, allowed: Set<String>, collection: String? = nil) async throws -> [String: JSONValue] {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBody) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "request body is larger than \(maxBody) bytes")
        }
        if let collection, served.hasCollection(collection) { try collectionLimits.admitBytes(buffer.readableBytes, for: collection) }
        let value: JSONValue
        do { value = try buffer.withUnsafeReadableBytes { raw throws(JSONParser.Failure) in try JSONParser.parse(raw) } } catch {
            throw APIError(.badRequest, "malformed_json", "request body is not valid JSON (\(error))")
        }
        guard case .object(let o) = value else { throw APIError.badRequest("request body must be a JSON object") }
        try checkKeys(o, allowed, "request")
        return o
    }
}

/// Moves a non-Sendable JSON dictionary out of the thread pool. The continuation's resume orders
/// the write before the read, but ThreadSanitizer does not see that edge for a task resumed from
/// a foreign thread; a lock makes the hand-off explicit (one uncontended lock per request).
/// `@unchecked Sendable`: the dictionary is only touched under the lock.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String: Any] = [:]
    init(_ v: [String: Any]) { lock.withLock { stored = v } }
    var value: [String: Any] { lock.withLock { stored } }
}
