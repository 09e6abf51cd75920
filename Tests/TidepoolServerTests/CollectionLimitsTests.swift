import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Tidepool
import TidepoolServer
import XCTest

/// Per-collection limits (`--collection-rate`, `--collection-bytes-rate`, `--collection-backlog`):
/// a collection over one gets 429 with `Retry-After`, and the other collections do not notice.
final class CollectionLimitsTests: XCTestCase {
    func testACollectionOverItsRequestRateGets429WithRetryAfterAndTheOthersDoNot() async throws {
        try await withServer(configure: {
            $0.collectionRate = 0.5; $0.collectionBurst = 3
        }) { c in
            for name in ["noisy", "quiet"] {
                let (s, o) = try await call(c, .post, "/v1/collections", auth: rw, "{\"name\":\"\(name)\",\"dimension\":2}")
                XCTAssertEqual(s, .created, "\(o)")
            }
            let q = #"{"vector":[1,2],"k":1}"#
            for _ in 0..<3 {
                let (s, o) = try await call(c, .post, "/v1/collections/noisy/query", auth: rw, q)
                XCTAssertEqual(s, .ok, "within the burst (creating it took no token: it did not exist yet): \(o)")
            }
            var headers = HTTPFields()
            headers[.authorization] = rw
            let (status, retry, body) = try await c.execute(
                uri: "/v1/collections/noisy/query", method: .post, headers: headers, body: ByteBuffer(string: q)
            ) { r in
                (r.status, r.headers[.retryAfter], (try? JSONSerialization.jsonObject(with: Data(buffer: r.body))) as? [String: Any] ?? [:])
            }
            XCTAssertEqual(status, .tooManyRequests)
            XCTAssertEqual(code(body), "rate_limited")
            XCTAssertEqual(retry, "2", "one token at 0.5 a second comes back in 2 s")
            let (s, o) = try await call(c, .post, "/v1/collections/quiet/query", auth: rw, q)
            XCTAssertEqual(s, .ok, "another collection is not limited by the noisy one: \(o)")
        }
    }

    func testACollectionOverItsByteRateGets429AndTheOthersDoNot() async throws {
        try await withServer(configure: {
            $0.collectionBytesRate = 1000; $0.collectionBytesBurst = 2500
        }) { c in
            for name in ["noisy", "quiet"] {
                let (s, o) = try await call(c, .post, "/v1/collections", auth: rw, "{\"name\":\"\(name)\",\"dimension\":2}")
                XCTAssertEqual(s, .created, "\(o)")
            }
            // A query padded with whitespace to about 1,500 bytes: the first fits the burst, the
            // second does not.
            let padded = "{\"vector\":[1,2],\"k\":1}" + String(repeating: " ", count: 1480)
            var (s, o) = try await call(c, .post, "/v1/collections/noisy/query", auth: rw, padded)
            XCTAssertEqual(s, .ok, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/noisy/query", auth: rw, padded)
            XCTAssertEqual(s, .tooManyRequests, "\(o)")
            XCTAssertEqual(code(o), "rate_limited")
            XCTAssertTrue((o["error"] as? [String: Any])?["message"].map { "\($0)".contains("bytes a second") } ?? false, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/quiet/query", auth: rw, padded)
            XCTAssertEqual(s, .ok, "another collection is not limited by the noisy one: \(o)")
        }
    }

    func testUpsertsIntoACollectionWithABacklogGet429UntilItIsIndexed() async throws {
        try await withServer(maxBody: 64 << 20, configure: { $0.collectionBacklog = 500 }) { c in
            for name in ["bulk", "small"] {
                let (s, o) = try await call(
                    c, .post, "/v1/collections", auth: rw, "{\"name\":\"\(name)\",\"dimension\":32,\"metric\":\"l2\"}")
                XCTAssertEqual(s, .created, "\(o)")
            }
            let vectors = randomRows(20_000, 32)
            func docs(_ range: Range<Int>) -> String {
                "{\"documents\":["
                    + range.map { "{\"id\":\($0),\"vector\":[\(vectors[$0].map { String($0) }.joined(separator: ","))]}" }
                    .joined(separator: ",") + "]}"
            }
            // A collection too small for an in-memory graph has no backlog, however many rows wait.
            var (s, o) = try await call(c, .post, "/v1/collections/small/upsert", auth: rw, docs(0..<1000))
            XCTAssertEqual(s, .ok, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/small/upsert", auth: rw, docs(1000..<1010))
            XCTAssertEqual(s, .ok, "\(o)")
            // 20,000 rows at once: the indexer works through them while the next upsert comes.
            (s, o) = try await call(c, .post, "/v1/collections/bulk/upsert", auth: rw, docs(0..<20_000))
            XCTAssertEqual(s, .ok, "\(o)")
            var headers = HTTPFields()
            headers[.authorization] = rw
            let one = ByteBuffer(string: docs(0..<1))
            let (status, retry, body) = try await c.execute(uri: "/v1/collections/bulk/upsert", method: .post, headers: headers, body: one)
            { r in
                (r.status, r.headers[.retryAfter], (try? JSONSerialization.jsonObject(with: Data(buffer: r.body))) as? [String: Any] ?? [:])
            }
            XCTAssertEqual(status, .tooManyRequests, "\(body)")
            XCTAssertEqual(code(body), "backlog_full")
            XCTAssertEqual(retry, "1")
            (s, o) = try await call(c, .post, "/v1/collections/small/upsert", auth: rw, docs(2000..<2010))
            XCTAssertEqual(s, .ok, "another collection is not held back: \(o)")
            (s, o) = try await call(
                c, .post, "/v1/collections/bulk/query", auth: rw,
                "{\"vector\":[\(vectors[7].map { String($0) }.joined(separator: ","))],\"k\":1}")
            XCTAssertEqual(s, .ok, "reads go on: \(o)")
            // Once the indexer has caught up, upserts are taken again.
            var accepted = false
            for _ in 0..<600 where !accepted {
                (s, o) = try await call(c, .post, "/v1/collections/bulk/upsert", auth: rw, docs(0..<1))
                accepted = s == .ok
                if !accepted { try await Task.sleep(for: .milliseconds(100)) }
            }
            XCTAssertTrue(accepted, "the backlog never cleared: \(o)")
        }
    }
}

/// Deterministic rows for request bodies.
func randomRows(_ n: Int, _ dim: Int, seed: UInt64 = 7) -> [[Float]] {
    var state = seed
    return (0..<n).map { _ in
        (0..<dim).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int(state >> 40) % 2000 - 1000) / 1000
        }
    }
}
