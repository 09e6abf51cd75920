import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tidepool
import XCTest

@testable import TidepoolServer

/// `/health` names the release (and the caller's client release); vectors travel as base64
/// float32 both ways when asked.
final class ServerQueryEncodingTests: XCTestCase {
    func testHealthNamesTheReleaseAndABatchTakesBase64Vectors() async throws {
        let dir = NSTemporaryDirectory() + "tidepool-server-b64-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir)
        let coll = try db.createCollection("c", dimension: 4, metric: .l2)
        try coll.upsert((0..<20).map { i in Document(id: .uint(UInt64(i)), vector: [Float(i), 0.5, 0, 1]) })
        let keys = try APIKeyring(spec: "write-key-0001:rw, read-key-00001:ro")
        @Sendable func b64(_ v: [Float]) -> String {
            var le = v.map { $0.bitPattern.littleEndian }
            return Data(bytes: &le, count: le.count * 4).base64EncodedString()
        }
        try await TidepoolServer(database: db, configuration: ServerConfiguration(port: 0, keys: keys)).application.test(.live) { c in
            let (h, health) = try await call(c, .get, "/health", auth: nil)
            XCTAssertEqual(h, .ok)
            XCTAssertEqual(health["version"] as? String, tidepoolReleaseVersion)
            let body = #"{"vectors_b64":["\#(b64([3, 0.5, 0, 1]))","\#(b64([17, 0.5, 0, 1]))"],"k":1}"#
            let (s, r) = try await call(c, .post, "/v1/collections/c/query", auth: ro, body)
            XCTAssertEqual(s, .ok, "\(r)")
            let lists = try XCTUnwrap(r["results"] as? [[[String: Any]]])
            XCTAssertEqual(lists.map { $0.first?["id"] as? Int }, [3, 17])
            let (both, _) = try await call(
                c, .post, "/v1/collections/c/query", auth: ro, #"{"vectors":[[1,0,0,0]],"vectors_b64":["\#(b64([1, 0, 0, 0]))"]}"#)
            XCTAssertEqual(both, .badRequest)
            let (bad, m) = try await call(c, .post, "/v1/collections/c/query", auth: ro, #"{"vectors_b64":["not base64!"]}"#)
            XCTAssertEqual(bad, .badRequest)
            XCTAssertTrue(((m["error"] as? [String: Any])?["message"] as? String ?? "").contains("vectors_b64"), "\(m)")
        }
    }

    func testVectorsComeBackAsBase64WhenAskedAndHealthEchoesTheClientRelease() async throws {
        let dir = NSTemporaryDirectory() + "tidepool-server-b64out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir)
        let coll = try db.createCollection("c", dimension: 3, metric: .l2)
        let v: [Float] = [0.1, -2.5, 1e-7]
        try coll.upsert([Document(id: .uint(1), vector: v)])
        let keys = try APIKeyring(spec: "write-key-0001:rw, read-key-00001:ro")
        try await TidepoolServer(database: db, configuration: ServerConfiguration(port: 0, keys: keys)).application.test(.live) { c in
            func decoded(_ o: [String: Any]?) -> [Float]? {
                guard let s = o?["vector_b64"] as? String, let d = Data(base64Encoded: s) else { return nil }
                return d.withUnsafeBytes { raw in
                    (0..<d.count / 4).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
                }
            }
            let (_, g) = try await call(c, .post, "/v1/collections/c/get", auth: ro, #"{"ids":[1],"vector_encoding":"base64"}"#)
            let doc = (g["documents"] as? [[String: Any]])?.first
            XCTAssertEqual(decoded(doc), v, "\(g)")
            XCTAssertNil(doc?["vector"])
            let (_, s) = try await call(
                c, .post, "/v1/collections/c/scan", auth: ro, #"{"include_vectors":true,"vector_encoding":"base64"}"#)
            XCTAssertEqual(decoded((s["documents"] as? [[String: Any]])?.first), v, "\(s)")
            let (_, q) = try await call(
                c, .post, "/v1/collections/c/query", auth: ro, #"{"vector":[0,0,0],"k":1,"include":["vectors"],"vector_encoding":"base64"}"#
            )
            XCTAssertEqual(decoded((q["results"] as? [[String: Any]])?.first), v, "\(q)")
            let (_, f) = try await call(c, .post, "/v1/collections/c/get", auth: ro, #"{"ids":[1]}"#)
            XCTAssertEqual(((f["documents"] as? [[String: Any]])?.first?["vector"] as? [Double])?.count, 3)
            let (bad, m) = try await call(c, .post, "/v1/collections/c/get", auth: ro, #"{"ids":[1],"vector_encoding":"hex"}"#)
            XCTAssertEqual(bad, .badRequest)
            XCTAssertEqual(code(m), "invalid_request")
            var headers = HTTPFields()
            headers[.userAgent] = "tidepool-client/9.8.7 python/3.11.7 httpx/0.29.0"
            let echoed = try await c.execute(uri: "/health", method: .get, headers: headers) { r in
                (try? JSONSerialization.jsonObject(with: Data(buffer: r.body))) as? [String: Any] ?? [:]
            }
            XCTAssertEqual(echoed["client_version"] as? String, "9.8.7")
            XCTAssertNil(clientRelease("curl/8.0"))
            XCTAssertNil(clientRelease("tidepool-client/<script>"))
        }
    }
}
