import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Tidepool
import TidepoolServer
import XCTest

let rw = "Bearer write-key-0001"
let ro = "Bearer read-key-00001"
let scoped = "Bearer scoped-key-001"

func call(_ c: TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, auth: String?, _ json: String? = nil) async throws -> (
    HTTPResponse.Status, [String: Any]
) {
    var headers = HTTPFields()
    if let auth { headers[.authorization] = auth }
    headers[.contentType] = "application/json"
    return try await c.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }) { r in
        let obj = (try? JSONSerialization.jsonObject(with: Data(buffer: r.body))) as? [String: Any] ?? [:]
        return (r.status, obj)
    }
}

func code(_ o: [String: Any]) -> String? { (o["error"] as? [String: Any])?["code"] as? String }

/// Runs `body` against a live server over a fresh database, with three keys: read-write,
/// read-only, and read-write scoped to the collection `allowed`.
func withServer(
    maxBody: Int = 1 << 20, maxInFlight: Int = 64, configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (TestClientProtocol) async throws -> Void
) async throws {
    let dir = NSTemporaryDirectory() + "tidepool-server-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let db = try Database(path: dir)
    let keys = try APIKeyring(spec: "write-key-0001:rw, read-key-00001:ro, scoped-key-001:rw:allowed")
    var configuration = ServerConfiguration(port: 0, keys: keys, maxBodyBytes: maxBody, maxInFlight: maxInFlight)
    configure(&configuration)
    try await TidepoolServer(database: db, configuration: configuration).application.test(.live, body)
}

/// The HTTP API through a real socket (Hummingbird's live test framework).
final class ServerTests: XCTestCase {
    func testEveryRouteAndErrorCode() async throws {
        try await withServer { c in
            var (s, o) = try await call(c, .get, "/health", auth: nil)
            XCTAssertEqual(s, .ok)
            (s, o) = try await call(c, .get, "/ready", auth: nil)
            XCTAssertEqual(s, .ok)
            XCTAssertEqual(o["status"] as? String, "ready")
            XCTAssertEqual(o["degraded_collections"] as? Int, 0)
            XCTAssertEqual(o["unavailable_collections"] as? Int, 0)
            (s, o) = try await call(c, .get, "/v1/collections", auth: nil)
            XCTAssertEqual(s, .unauthorized)
            XCTAssertEqual(code(o), "unauthorized")
            (s, o) = try await call(c, .get, "/v1/collections", auth: "Bearer wrong-key-9999")
            XCTAssertEqual(s, .unauthorized)

            (s, o) = try await call(
                c, .post, "/v1/collections", auth: rw, #"{"name":"docs","dimension":3,"metric":"l2","config":{"text_fields":["body"]}}"#)
            XCTAssertEqual(s, .created, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections", auth: rw, #"{"name":"docs","dimension":3}"#)
            XCTAssertEqual(s, .conflict)
            XCTAssertEqual(code(o), "collection_exists")
            (s, o) = try await call(c, .post, "/v1/collections", auth: ro, #"{"name":"other","dimension":3}"#)
            XCTAssertEqual(s, .forbidden)

            let b64 = Data([Float(0), 0, 1].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }).base64EncodedString()
            (s, o) = try await call(
                c, .post, "/v1/collections/docs/upsert", auth: rw,
                """
                {"documents":[{"id":1,"vector":[1,0,0],"attributes":{"body":"red apple","n":1}},
                              {"id":"two","vector":[0,1,0],"attributes":{"body":"green apple","n":2}},
                              {"id":3,"vector_b64":"\(b64)","attributes":{"body":"blue sky","n":3}}]}
                """)
            XCTAssertEqual(s, .ok, "\(o)")
            XCTAssertEqual(o["upserted"] as? Int, 3)
            XCTAssertNotNil(o["took_ms"])

            (s, o) = try await call(
                c, .post, "/v1/collections/docs/query", auth: ro, #"{"vector":[0,0,0.9],"k":1,"include":["attributes","vectors"]}"#)
            XCTAssertEqual(s, .ok)
            let hit = (o["results"] as? [[String: Any]])?.first
            XCTAssertEqual(hit?["id"] as? Int, 3)
            XCTAssertEqual((hit?["attributes"] as? [String: Any])?["body"] as? String, "blue sky")
            XCTAssertEqual(hit?["vector"] as? [Double], [0, 0, 1])
            // Three rows in the in-memory tier: one container, scanned exactly.
            let cost = o["cost"] as? [String: Any]
            XCTAssertEqual(cost?["containers"] as? Int, 1, "\(o)")
            XCTAssertEqual(cost?["rows_scanned"] as? Int, 3)
            XCTAssertEqual(cost?["distances"] as? Int, 3)
            XCTAssertEqual(cost?["graph_searches"] as? Int, 0)
            (s, o) = try await call(
                c, .post, "/v1/collections/docs/query", auth: ro, #"{"vectors":[[1,0,0],[0,1,0]],"k":1,"filter":{"n":{"lte":2}}}"#)
            XCTAssertEqual(((o["results"] as? [[[String: Any]]])?.map { $0.first?["id"] as? AnyHashable }), [1, "two"])
            (s, o) = try await call(c, .post, "/v1/collections/docs/query", auth: ro, #"{"text":"apple","k":5,"filter":{"n":{"gte":2}}}"#)
            XCTAssertEqual((o["results"] as? [[String: Any]])?.map { $0["id"] as? String }, ["two"])
            XCTAssertEqual((o["cost"] as? [String: Any])?["rows_scanned"] as? Int, 3, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/docs/query", auth: ro, #"{"vector":[1,0,0],"text":"apple","k":2}"#)
            XCTAssertEqual((o["results"] as? [[String: Any]])?.first?["text_rank"] as? Int, 1)

            (s, o) = try await call(c, .post, "/v1/collections/docs/get", auth: ro, #"{"ids":[1,"two",99]}"#)
            XCTAssertEqual((o["documents"] as? [[String: Any]])?.count, 2)
            (s, o) = try await call(c, .post, "/v1/collections/docs/scan", auth: ro, #"{"limit":2}"#)
            XCTAssertEqual((o["documents"] as? [[String: Any]])?.count, 2)
            XCTAssertEqual(o["next"] as? Int, 3)
            (s, o) = try await call(c, .get, "/v1/collections/docs", auth: ro)
            XCTAssertEqual(o["count"] as? Int, 3)
            XCTAssertEqual((o["attribute_types"] as? [String: String])?["n"], "int")
            XCTAssertEqual((o["health"] as? [String: Any])?["status"] as? String, "ok")

            // Bad requests change nothing.
            for bad in [
                #"{"documents":[{"id":9,"vector":[1,0]}]}"#,  // wrong dimension
                #"{"documents":[{"id":9,"vector":[1,0,0],"colour":1}]}"#,  // unknown field
                #"{"documents":[{"id":9,"vector":[1,0,0],"attributes":{"n":"x"}}]}"#,  // type clash
                #"{"documents": 5}"#, "not json",
            ] {
                (s, o) = try await call(c, .post, "/v1/collections/docs/upsert", auth: rw, bad)
                XCTAssertEqual(s, .badRequest, bad)
                XCTAssertNotNil(code(o), bad)
            }
            (s, o) = try await call(c, .post, "/v1/collections/docs/query", auth: ro, #"{"vector":[1,0,0],"filter":{"nope":1}}"#)
            XCTAssertEqual(s, .badRequest)
            (s, o) = try await call(c, .post, "/v1/collections/missing/query", auth: ro, #"{"vector":[1,0,0]}"#)
            XCTAssertEqual(s, .notFound)
            XCTAssertEqual(code(o), "collection_not_found")
            (s, o) = try await call(c, .get, "/v1/collections/docs", auth: scoped)
            XCTAssertEqual(s, .forbidden)
            (s, o) = try await call(
                c, .post, "/v1/collections/allowed/upsert", auth: scoped,
                #"{"documents":[{"id":1,"vector":[1,2]}],"create":{"metric":"l2"}}"#)
            XCTAssertEqual(s, .ok, "\(o)")
            (s, o) = try await call(c, .get, "/v1/collections", auth: scoped)
            XCTAssertEqual((o["collections"] as? [[String: Any]])?.map { $0["name"] as? String }, ["allowed"])

            (s, o) = try await call(c, .post, "/v1/collections/docs/delete", auth: rw, #"{"filter":{"n":{"gte":3}}}"#)
            XCTAssertEqual(o["deleted"] as? Int, 1)
            (s, o) = try await call(c, .post, "/v1/collections/docs/delete", auth: rw, #"{"ids":[1]}"#)
            XCTAssertEqual(o["deleted"] as? Int, 1)
            (s, o) = try await call(c, .get, "/v1/collections/docs", auth: ro)
            XCTAssertEqual(o["count"] as? Int, 1)

            let metrics = try await c.execute(uri: "/metrics", method: .get, headers: [.authorization: ro]) { String(buffer: $0.body) }
            XCTAssertTrue(metrics.contains("tidepool_documents"), metrics)
            XCTAssertTrue(metrics.contains("hb_requests"), metrics)

            // Index settings change over PATCH; bad ones and read-only keys change nothing.
            (s, o) = try await call(c, .patch, "/v1/collections/docs", auth: ro, #"{"config":{"quantization":"sq8"}}"#)
            XCTAssertEqual(s, .forbidden)
            (s, o) = try await call(c, .patch, "/v1/collections/docs", auth: rw, #"{"config":{"m":1}}"#)
            XCTAssertEqual(s, .badRequest, "\(o)")
            (s, o) = try await call(c, .patch, "/v1/collections/docs", auth: rw, #"{"config":{"text_fields":["x"]}}"#)
            XCTAssertEqual(s, .badRequest, "\(o)")
            (s, o) = try await call(c, .patch, "/v1/collections/docs", auth: rw, #"{"config":{"quantization":"int4"}}"#)
            XCTAssertEqual(s, .badRequest, "\(o)")
            (s, o) = try await call(c, .get, "/v1/collections/docs", auth: ro)
            XCTAssertEqual((o["config"] as? [String: Any])?["quantization"] as? String, "none")
            (s, o) = try await call(c, .patch, "/v1/collections/docs", auth: rw, #"{"config":{"quantization":"sq8","ef_search":80}}"#)
            XCTAssertEqual(s, .ok, "\(o)")
            XCTAssertEqual((o["config"] as? [String: Any])?["quantization"] as? String, "sq8")
            XCTAssertEqual((o["config"] as? [String: Any])?["ef_search"] as? Int, 80)
            // IVF settings: validated by the engine (pq needs a dimension it divides; 3 is divisible by 3).
            (s, o) = try await call(
                c, .patch, "/v1/collections/docs", auth: rw, #"{"config":{"index":"ivf","quantization":"pq","pq_subspaces":2}}"#)
            XCTAssertEqual(s, .badRequest, "\(o)")
            (s, o) = try await call(
                c, .patch, "/v1/collections/docs", auth: rw,
                #"{"config":{"index":"ivf","quantization":"pq","pq_subspaces":3,"nlist":2,"nprobe":1}}"#)
            XCTAssertEqual(s, .ok, "\(o)")
            XCTAssertEqual((o["config"] as? [String: Any])?["index"] as? String, "ivf")
            XCTAssertEqual((o["config"] as? [String: Any])?["nlist"] as? Int, 2)
            (s, o) = try await call(c, .post, "/v1/collections/docs/query", auth: ro, #"{"vector":[0,0,0.9],"k":1,"nprobe":2}"#)
            XCTAssertEqual(s, .ok, "\(o)")
            XCTAssertNotNil((o["cost"] as? [String: Any])?["lists_probed"] as? Int)
            (s, o) = try await call(c, .post, "/v1/collections/docs/query", auth: ro, #"{"vector":[0,0,0.9],"k":1,"nprobe":0}"#)
            XCTAssertEqual(s, .badRequest, "\(o)")
            (s, o) = try await call(c, .patch, "/v1/collections/nope", auth: rw, #"{"config":{}}"#)
            XCTAssertEqual(s, .notFound)

            (s, o) = try await call(c, .delete, "/v1/collections/docs", auth: rw)
            XCTAssertEqual(s, .ok)
            (s, o) = try await call(c, .get, "/v1/collections/docs", auth: ro)
            XCTAssertEqual(s, .notFound)
        }
    }

    /// Compaction on request (in the background), prewarming, and the writer's head, which only a
    /// writer on object storage gives (a local directory has no query nodes to ask it).
    func testCompactPrewarmAndHead() async throws {
        try await withServer { c in
            var (s, o) = try await call(c, .post, "/v1/collections", auth: rw, #"{"name":"k","dimension":2,"metric":"l2"}"#)
            XCTAssertEqual(s, .created)
            for i in 0..<3 {
                (s, o) = try await call(
                    c, .post, "/v1/collections/k/upsert", auth: rw, "{\"documents\":[{\"id\":\(i),\"vector\":[\(i),1]}]}")
                XCTAssertEqual(s, .ok)
            }
            (s, o) = try await call(c, .post, "/v1/collections/k/compact", auth: ro)
            XCTAssertEqual(s, .forbidden, "compaction is a write")
            (s, o) = try await call(c, .post, "/v1/collections/k/compact", auth: rw)
            XCTAssertEqual(s, .accepted, "\(o)")
            var segments = 0
            for _ in 0..<200 {
                (s, o) = try await call(c, .get, "/v1/collections/k", auth: ro)
                segments = (o["segments"] as? [Any])?.count ?? 0
                if segments == 1, o["memtable_rows"] as? Int == 0 { break }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            XCTAssertEqual(segments, 1, "the memtable became the one segment: \(o)")
            (s, o) = try await call(c, .post, "/v1/collections/k/prewarm", auth: ro)
            XCTAssertEqual(s, .ok, "\(o)")
            XCTAssertGreaterThan(o["prewarmed_bytes"] as? Int ?? 0, 0, "\(o)")
            (s, o) = try await call(c, .get, "/v1/collections/k/head", auth: ro)
            XCTAssertEqual(s, .conflict, "\(o)")
            XCTAssertEqual(code(o), "not_the_writer")
            (s, o) = try await call(c, .get, "/v1/collections/nope/head", auth: ro)
            XCTAssertEqual(s, .notFound, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/nope/compact", auth: rw)
            XCTAssertEqual(s, .notFound)
        }
    }

    func testOversizedBodyIs413() async throws {
        try await withServer(maxBody: 1000) { c in
            _ = try await call(c, .post, "/v1/collections", auth: rw, #"{"name":"d","dimension":2}"#)
            let big = "{\"documents\":[" + (0..<200).map { "{\"id\":\($0),\"vector\":[1,2]}" }.joined(separator: ",") + "]}"
            let (s, o) = try await call(c, .post, "/v1/collections/d/upsert", auth: rw, big)
            XCTAssertEqual(s, .contentTooLarge)
            XCTAssertEqual(code(o), "body_too_large")
        }
    }

    func testAPIKeyringParsingAndConstantTimeLookup() throws {
        let k = try APIKeyring(spec: "aaaaaaaa:rw\n# comment\nbbbbbbbb:ro:x|y")
        XCTAssertEqual(k.lookup("aaaaaaaa")?.role, .readWrite)
        XCTAssertEqual(k.lookup("bbbbbbbb")?.collections, ["x", "y"])
        XCTAssertNil(k.lookup("aaaaaaab"))
        XCTAssertNil(k.lookup("aaaaaaaaa"))
        XCTAssertNil(k.lookup(""))
        XCTAssertThrowsError(try APIKeyring(spec: "short:rw"))
        XCTAssertThrowsError(try APIKeyring(spec: "longenough:admin"))
    }
}
