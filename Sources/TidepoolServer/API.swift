import Foundation
import Hummingbird
import Metrics
import NIOCore
import NIOPosix
import Tidepool

/// The `/v1` routes. Bodies are JSON objects; unknown fields are refused (400), so a typo
/// never silently changes what a request means. Every response reports `took_ms`.
struct API: Sendable {
    let database: Database
    let maxBody: Int

    func register(_ router: Router<TidepoolRequestContext>) {
        let v1 = router.group("v1")
        v1.get("collections") { _, context in
            try await run(context, write: false, collection: nil) { _ in
                ["collections": try database.collectionNames.map { try describe(database.collection($0)) }]
            }
        }
        v1.post("collections") { request, context in
            let body = try await object(request, allowed: ["name", "dimension", "metric", "config"])
            let name = try string(body, "name")
            return try await run(context, write: true, collection: name, status: .created) { _ in
                let metric = try metricValue(body["metric"] ?? .string("cosine"))
                let config = try collectionConfig(body["config"])
                return try describe(
                    database.createCollection(name, dimension: Int(try int(body, "dimension")), metric: metric, config: config))
            }
        }
        v1.get("collections/:name") { _, context in
            let name = try context.parameters.require("name")
            return try await run(context, write: false, collection: name) { _ in try describe(database.collection(name)) }
        }
        v1.delete("collections/:name") { _, context in
            let name = try context.parameters.require("name")
            return try await run(context, write: true, collection: name) { _ in
                try database.dropCollection(name)
                return ["deleted": name]
            }
        }
        v1.patch("collections/:name") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["config"])
            return try await run(context, write: true, collection: name) { _ in
                guard case .object(let c)? = body["config"] else { throw APIError.badRequest("'config' must be an object") }
                try checkKeys(c, IndexSettings.keys, "config")
                let settings = try IndexSettings(c)
                let coll = try database.collection(name)
                try coll.updateIndexSettings(settings.apply)
                return describe(coll)
            }
        }
        v1.post("collections/:name/upsert") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["documents", "create"])
            return try await run(context, write: true, collection: name) { _ in
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
                let coll: Tidepool.Collection
                if let (metric, config) = create, !database.collectionNames.contains(name) {
                    coll = try database.createCollection(name, dimension: docs[0].vector.count, metric: metric, config: config)
                } else {
                    coll = try database.collection(name)
                }
                try coll.upsert(docs)
                return ["upserted": docs.count]
            }
        }
        v1.post("collections/:name/delete") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["ids", "filter"])
            return try await run(context, write: true, collection: name) { _ in
                let coll = try database.collection(name)
                switch (body["ids"], body["filter"]) {
                case (.array(let ids)?, nil): return ["deleted": try coll.delete(ids: ids.map(documentID))]
                case (nil, let f?): return ["deleted": try coll.delete(filter: try filter(f))]
                default: throw APIError.badRequest("give exactly one of 'ids' (array) or 'filter'")
                }
            }
        }
        v1.post("collections/:name/get") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["ids", "include_vectors"])
            return try await run(context, write: false, collection: name) { _ in
                guard case .array(let ids)? = body["ids"] else { throw APIError.badRequest("'ids' must be an array") }
                let vectors = try bool(body, "include_vectors", default: true)
                return ["documents": try database.collection(name).get(ids: ids.map(documentID)).map { encode($0, vectors: vectors) }]
            }
        }
        v1.post("collections/:name/scan") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["filter", "after", "limit", "include_vectors"])
            return try await run(context, write: false, collection: name) { _ in
                let page = try database.collection(name).scan(
                    filter: try body["filter"].map(filter), after: try body["after"].map(documentID),
                    limit: Int(try int(body, "limit", default: 1000)), includeVectors: try bool(body, "include_vectors", default: false))
                let vectors = try bool(body, "include_vectors", default: false)
                return [
                    "documents": page.documents.map { encode($0, vectors: vectors) },
                    "next": page.next.map(idJSON) ?? NSNull(),
                ]
            }
        }
        v1.post("collections/:name/query") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(
                request,
                allowed: [
                    "vector", "vector_b64", "vectors", "k", "ef", "exact", "filter", "include",
                    "text", "text_match", "fusion", "vector_weight", "candidates", "rerank", "nprobe",
                ])
            return try await run(context, write: false, collection: name) { _ in try query(try database.collection(name), body) }
        }
    }

    // MARK: Execution

    /// Checks the key's rights, runs the engine call (writes on the blocking thread pool, reads in
    /// place), and wraps the result with the server-side time.
    func run(
        _ context: TidepoolRequestContext, write: Bool, collection: String?, status: HTTPResponse.Status = .ok,
        _ body: @escaping @Sendable (Void) throws -> [String: Any]
    ) async throws -> Response {
        guard let key = context.apiKey else { throw APIError(.unauthorized, "unauthorized", "no API key") }
        if write && key.role != .readWrite { throw APIError(.forbidden, "forbidden", "this API key is read-only") }
        if let collection, !key.allows(collection: collection) {
            throw APIError(.forbidden, "forbidden", "this API key has no access to collection '\(collection)'")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        // Writes may wait for fsync: they run on the blocking pool. Reads only touch memory and
        // mapped files: they run in place, saving two thread hops per request.
        var result = write ? try await NIOThreadPool.singleton.runIfActive { ResultBox(try body(())) }.value : try body(())
        if collection == nil, write == false, let all = result["collections"] as? [[String: Any]], !key.allows(collection: "") {
            result["collections"] = all.filter { key.allows(collection: $0["name"] as? String ?? "") }
        }
        result["took_ms"] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return jsonResponse(result, status: status)
    }

    func object(_ request: Request, allowed: Set<String>) async throws -> [String: JSONValue] {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBody) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "request body is larger than \(maxBody) bytes")
        }
        let value: JSONValue
        do { value = try buffer.withUnsafeReadableBytes { raw throws(JSONParser.Failure) in try JSONParser.parse(raw) } } catch {
            throw APIError(.badRequest, "malformed_json", "request body is not valid JSON (\(error))")
        }
        guard case .object(let o) = value else { throw APIError.badRequest("request body must be a JSON object") }
        try checkKeys(o, allowed, "request")
        return o
    }

    // MARK: Queries

    func query(_ coll: Tidepool.Collection, _ b: [String: JSONValue]) throws -> [String: Any] {
        let k = Int(try int(b, "k", default: 10))
        let ef = try b["ef"].map { v -> Int in
            guard case .int(let i) = v else { throw APIError.badRequest("'ef' must be an integer") }; return Int(i)
        }
        let rerank = try b["rerank"].map { v -> Int in
            guard case .int(let i) = v else { throw APIError.badRequest("'rerank' must be an integer") }; return Int(i)
        }
        let nprobe = try b["nprobe"].map { v -> Int in
            guard case .int(let i) = v, (1...1_048_576).contains(i) else {
                throw APIError.badRequest("'nprobe' must be an integer in 1...1048576")
            }
            return Int(i)
        }
        let include = try stringList(b["include"] ?? .array([]), "include")
        for i in include where i != "attributes" && i != "vectors" {
            throw APIError.badRequest("'include' accepts \"attributes\" and \"vectors\", not '\(i)'")
        }
        let f = try b["filter"].map(filter)
        let text: String? = try b["text"].map { v in
            guard case .string(let s) = v else { throw APIError.badRequest("'text' must be a string") }; return s
        }
        let match =
            try TextMatch(rawValue: string(b, "text_match", default: "any"))
            ?? { throw APIError.badRequest("'text_match' must be any, all or phrase") }()
        var vectors: [[Float]] = []
        if let v = b["vector"] { vectors.append(try floatVector(v)) }
        if let v = b["vector_b64"] { vectors.append(try base64Vector(v)) }
        if case .array(let vs)? = b["vectors"] {
            vectors += try vs.map(floatVector)
        } else if b["vectors"] != nil {
            throw APIError.badRequest("'vectors' must be an array of vectors")
        }
        guard vectors.count <= 1024 else { throw APIError.badRequest("at most 1024 vectors per request") }
        let batch = b["vectors"] != nil
        var results: [[[String: Any]]] = []
        var textCost = SearchCost()
        if let text {
            guard vectors.count <= 1 else { throw APIError.badRequest("text and hybrid queries take one vector at most") }
            if let v = vectors.first {
                let fusion: Fusion
                switch try string(b, "fusion", default: "rrf") {
                case "rrf": fusion = .reciprocalRank()
                case "weighted": fusion = .weighted(vectorWeight: try double(b, "vector_weight", default: 0.5))
                default: throw APIError.badRequest("'fusion' must be rrf or weighted")
                }
                let (hits, cost) = try coll.hybridSearchWithCost(
                    vector: v, text: text, k: k,
                    options: HybridOptions(
                        fusion: fusion, candidates: Int(try int(b, "candidates", default: 100)), ef: ef, filter: f, match: match,
                        includeAttributes: include.contains("attributes")))
                textCost = cost
                results.append(
                    hits.map { h in
                        var o: [String: Any] = ["id": idJSON(h.id), "score": h.score]
                        o["vector_rank"] = h.vectorRank.map { $0 as Any } ?? NSNull()
                        o["vector_distance"] = h.vectorDistance.map { Double($0) as Any } ?? NSNull()
                        o["text_rank"] = h.textRank.map { $0 as Any } ?? NSNull()
                        o["text_score"] = h.textScore.map { $0 as Any } ?? NSNull()
                        if let a = h.attributes { o["attributes"] = attributesJSON(a) }
                        return o
                    })
            } else {
                let (hits, cost) = try coll.textSearchWithCost(
                    text, k: k,
                    options: TextSearchOptions(
                        match: match, filter: f, includeAttributes: include.contains("attributes")))
                textCost = cost
                results.append(
                    hits.map { h in
                        var o: [String: Any] = ["id": idJSON(h.id), "score": h.score]
                        if let a = h.attributes { o["attributes"] = attributesJSON(a) }
                        return o
                    })
            }
        } else {
            guard !vectors.isEmpty else { throw APIError.badRequest("give 'vector', 'vector_b64', 'vectors' or 'text'") }
            let options = SearchOptions(
                ef: ef, exact: try bool(b, "exact", default: false), includeAttributes: include.contains("attributes"),
                includeVectors: include.contains("vectors"), maxThreads: 1, filter: f, rerank: rerank, nprobe: nprobe)
            var lists: [RawJSON] = []
            var cost = SearchCost()
            for v in vectors {
                let r = try coll.searchWithCost(vector: v, k: k, options: options)
                lists.append(.hits(r.hits))
                cost.add(r.cost)
            }
            return ["results": batch ? lists : lists[0], "cost": costJSON(cost)]
        }
        return ["results": results.first ?? [], "cost": costJSON(textCost)]
    }

    func recordGauges() {
        for name in database.collectionNames {
            guard let info = try? database.collection(name).info() else { continue }
            let dims = [("collection", name)]
            Gauge(label: "tidepool_documents", dimensions: dims).record(info.count)
            Gauge(label: "tidepool_segments", dimensions: dims).record(info.segments.count)
            Gauge(label: "tidepool_wal_bytes", dimensions: dims).record(info.walBytes)
            Gauge(label: "tidepool_memtable_rows", dimensions: dims).record(info.memtableRows)
            Gauge(label: "tidepool_memtable_indexed_rows", dimensions: dims).record(info.memtableIndexedRows)
            Gauge(label: "tidepool_deleted_rows", dimensions: dims).record(info.segments.reduce(0) { $0 + $1.deletedRows })
        }
    }
}

/// Moves a non-Sendable JSON dictionary out of the thread pool.
final class ResultBox: @unchecked Sendable {
    let value: [String: Any]
    init(_ v: [String: Any]) { value = v }
}
