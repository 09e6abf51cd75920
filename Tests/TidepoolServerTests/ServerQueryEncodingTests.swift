import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tidepool
import XCTest

@testable import TidepoolServer

/// `/health` names the release; a batch query can send its vectors as base64 float32.
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
}
