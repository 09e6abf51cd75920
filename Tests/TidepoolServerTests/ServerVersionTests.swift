import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tidepool
import XCTest

@testable import TidepoolServer

/// Versions, snapshots, restores and branches over HTTP.
final class ServerVersionTests: XCTestCase {
    func testVersionsSnapshotsRestoreAndBranchesOverHTTP() async throws {
        let dir = NSTemporaryDirectory() + "tidepool-server-versions-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir)
        let coll = try db.createCollection("c", dimension: 4, metric: .l2)
        try coll.upsert((0..<50).map { i in Document(id: .uint(UInt64(i)), vector: [Float(i), 0, 0, 1]) })
        try coll.flush()
        try coll.delete(ids: (0..<5).map { .uint(UInt64($0)) })  // few: no compaction
        try coll.flush()
        let keys = try APIKeyring(spec: "write-key-0001:rw, read-key-00001:ro")
        try await TidepoolServer(database: db, configuration: ServerConfiguration(port: 0, keys: keys)).application.test(.live) { c in
            let (s, v) = try await call(c, .get, "/v1/collections/c/versions", auth: ro)
            XCTAssertEqual(s, .ok, "\(v)")
            XCTAssertEqual(v["version"] as? Int, 2)
            XCTAssertEqual((v["versions"] as? [[String: Any]])?.compactMap { $0["documents"] as? Int }, [50, 45])
            // Reads as of version 1 see the deleted rows; the current state does not.
            let query = #"{"vector":[3,0,0,1],"k":1,"as_of":1}"#
            let (q, hits) = try await call(c, .post, "/v1/collections/c/query", auth: ro, query)
            XCTAssertEqual(q, .ok, "\(hits)")
            XCTAssertEqual(((hits["results"] as? [[String: Any]])?.first?["id"] as? Int), 3)
            let (g, got) = try await call(c, .post, "/v1/collections/c/get", auth: ro, #"{"ids":[3],"as_of":1}"#)
            XCTAssertEqual(g, .ok)
            XCTAssertEqual((got["documents"] as? [[String: Any]])?.count, 1)
            let (sc, page) = try await call(c, .post, "/v1/collections/c/scan", auth: ro, #"{"limit":100,"as_of":1}"#)
            XCTAssertEqual(sc, .ok)
            XCTAssertEqual((page["documents"] as? [[String: Any]])?.count, 50)
            let (missing, m) = try await call(c, .post, "/v1/collections/c/query", auth: ro, #"{"vector":[3,0,0,1],"k":1,"as_of":40}"#)
            XCTAssertEqual(missing, .notFound, "\(m)")
            XCTAssertEqual((m["error"] as? [String: Any])?["code"] as? String, "not_found")
            let (bad, _) = try await call(c, .post, "/v1/collections/c/query", auth: ro, #"{"vector":[3,0,0,1],"k":1,"as_of":"yesterday"}"#)
            XCTAssertEqual(bad, .badRequest)
            // Snapshots: a read-only key may not take one.
            let (denied, _) = try await call(c, .post, "/v1/collections/c/snapshots", auth: ro, #"{"name":"s1"}"#)
            XCTAssertEqual(denied, .forbidden)
            let (made, snap) = try await call(c, .post, "/v1/collections/c/snapshots", auth: rw, #"{"name":"s1","version":1}"#)
            XCTAssertEqual(made, .created, "\(snap)")
            XCTAssertEqual(snap["version"] as? Int, 1)
            let (again, _) = try await call(c, .post, "/v1/collections/c/snapshots", auth: rw, #"{"name":"s1"}"#)
            XCTAssertEqual(again, .conflict)
            let (listed, list) = try await call(c, .get, "/v1/collections/c/snapshots", auth: ro)
            XCTAssertEqual(listed, .ok)
            XCTAssertEqual((list["snapshots"] as? [[String: Any]])?.first?["name"] as? String, "s1")
            // A branch of the snapshot's version, then a restore of the source to it.
            let (branched, b) = try await call(c, .post, "/v1/collections/c/branch", auth: rw, #"{"name":"exp","version":1}"#)
            XCTAssertEqual(branched, .created, "\(b)")
            XCTAssertEqual(b["bytes_copied"] as? Int, 0)
            let (described, d) = try await call(c, .get, "/v1/collections/exp", auth: ro)
            XCTAssertEqual(described, .ok)
            XCTAssertEqual(d["count"] as? Int ?? d["documents"] as? Int, 50, "\(d)")
            let (restored, r) = try await call(c, .post, "/v1/collections/c/restore", auth: rw, #"{"version":1}"#)
            XCTAssertEqual(restored, .ok, "\(r)")
            XCTAssertEqual(r["version"] as? Int, 3)
            let (after, a) = try await call(c, .post, "/v1/collections/c/scan", auth: ro, #"{"limit":100}"#)
            XCTAssertEqual(after, .ok)
            XCTAssertEqual((a["documents"] as? [[String: Any]])?.count, 50)
            let (both, _) = try await call(c, .post, "/v1/collections/c/restore", auth: rw, #"{"version":1,"time":"2026-01-01T00:00:00Z"}"#)
            XCTAssertEqual(both, .badRequest)
            let (deleted, _) = try await call(c, .delete, "/v1/collections/c/snapshots/s1", auth: rw)
            XCTAssertEqual(deleted, .ok)
            let (gone, _) = try await call(c, .delete, "/v1/collections/c/snapshots/s1", auth: rw)
            XCTAssertEqual(gone, .notFound)
        }
    }
}
