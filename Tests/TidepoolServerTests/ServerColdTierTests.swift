import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tidepool
import XCTest

@testable import TidepoolServer

/// A server over a database with a memory budget: the collection's description and `/metrics`
/// say which segments are searched from disk.
final class ServerColdTierTests: XCTestCase {
    func testTheDescriptionAndMetricsShowTheColdTier() async throws {
        let dir = NSTemporaryDirectory() + "tidepool-server-cold-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir, options: DatabaseOptions(memoryBudget: 512 << 10))
        let coll = try db.createCollection("c", dimension: 32, metric: .l2)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15  // a fixed seed: the same rows every run
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        try coll.upsert((0..<6000).map { i in Document(id: .uint(UInt64(i)), vector: (0..<32).map { _ in next() }) })
        try coll.flush()
        let keys = try APIKeyring(spec: "write-key-0001:rw, read-key-00001:ro")
        let configuration = ServerConfiguration(port: 0, keys: keys)
        try await TidepoolServer(database: db, configuration: configuration).application.test(.live) { c in
            let (s, o) = try await call(c, .get, "/v1/collections/c", auth: ro)
            XCTAssertEqual(s, .ok)
            let segment = try XCTUnwrap((o["segments"] as? [[String: Any]])?.first)
            XCTAssertEqual(segment["tier"] as? String, "cold", "\(segment)")
            XCTAssertGreaterThan(segment["tier_bytes"] as? Int ?? 0, 0)
            let (q, hits) = try await call(
                c, .post, "/v1/collections/c/query", auth: ro, #"{"vector":[\#((0..<32).map { _ in "0.1" }.joined(separator: ","))],"k":5}"#
            )
            XCTAssertEqual(q, .ok, "\(hits)")
            XCTAssertEqual((hits["results"] as? [[String: Any]])?.count, 5)
            let text = try await c.execute(uri: "/metrics", method: .get, headers: [.authorization: ro]) { String(buffer: $0.body) }
            XCTAssertTrue(text.contains(#"tidepool_cold_segments{collection="c"} 1"#), text)
            XCTAssertTrue(text.contains(#"tidepool_tier_bytes{collection="c"}"#), text)
        }
    }
}
