import Foundation
import XCTest

/// `tidepool serve --storage s3://…` against a real store (SeaweedFS): a writer and a read-only
/// query node over the same prefix; a write acknowledged by the writer is seen at once through
/// the query node with strong reads, eventual reads report their staleness, a query node forwards
/// writes to the writer (or, with forwarding off, refuses them naming it), and a write seen
/// through one query node is seen through another.
final class ObjectStorageServeTests: XCTestCase {
    let harness = ServeHarness()

    func testAWriteAcknowledgedByTheWriterIsSeenAtOnceThroughAQueryNode() throws {
        let (bucket, s3) = try harness.objectStore()
        let url = "s3://\(bucket)/serve-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let cacheA = NSTemporaryDirectory() + "tidepool-serve-cache-a-\(getpid())"
        let cacheB = NSTemporaryDirectory() + "tidepool-serve-cache-b-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: cacheA)
            try? FileManager.default.removeItem(atPath: cacheB)
        }
        let (pw, pr) = (27000 + Int(getpid() % 1000), 28000 + Int(getpid() % 1000))
        let writer = try harness.start(arguments: ["serve", "--storage", url, "--cache-dir", cacheA], port: pw, environment: s3)
        defer { writer.terminate() }
        var (s, o) = try harness.request(pw, "POST", "/v1/collections", #"{"name":"c","dimension":4,"metric":"l2"}"#)
        XCTAssertEqual(s, 201, "\(o)")
        (s, o) = try harness.request(pw, "POST", "/v1/collections/c/upsert", #"{"documents":[{"id":0,"vector":[0,1,2,3]}]}"#)
        XCTAssertEqual(s, 200, "\(o)")
        let reader = try harness.start(
            arguments: ["serve", "--storage", url, "--cache-dir", cacheB, "--read-only"], port: pr, environment: s3)
        defer { reader.terminate() }
        for i in 1...25 {
            (s, o) = try harness.request(pw, "POST", "/v1/collections/c/upsert", "{\"documents\":[{\"id\":\(i),\"vector\":[\(i),1,2,3]}]}")
            XCTAssertEqual(s, 200, "\(o)")
            (s, o) = try harness.request(pr, "POST", "/v1/collections/c/get", "{\"ids\":[\(i)]}")
            XCTAssertEqual(s, 200, "\(o)")
            XCTAssertEqual((o["documents"] as? [[String: Any]])?.count, 1, "write \(i) not seen through the query node: \(o)")
            (s, o) = try harness.request(pr, "POST", "/v1/collections/c/query", "{\"vector\":[\(i),1,2,3],\"k\":1}")
            XCTAssertEqual((o["results"] as? [[String: Any]])?.first?["id"] as? Int, i, "\(o)")
        }
        (s, o) = try harness.request(pr, "POST", "/v1/collections/c/get", #"{"ids":[1],"consistency":"eventual"}"#)
        XCTAssertEqual(o["consistency"] as? String, "eventual")
        XCTAssertNotNil(o["staleness_ms"] as? Double, "\(o)")
        (s, o) = try harness.request(pr, "POST", "/v1/collections/c/get", #"{"ids":[1],"consistency":"sometimes"}"#)
        XCTAssertEqual(s, 400)
        (s, o) = try harness.request(pw, "GET", "/v1/collections/c/head", nil)
        XCTAssertEqual(s, 200, "\(o)")
        XCTAssertEqual(o["wal_head"] as? Int, 27, "the writer's head: its fence, then 26 upserts")
        (s, o) = try harness.request(pr, "GET", "/v1/collections/c/head", nil)
        XCTAssertEqual(s, 409, "a query node does not vouch for a head: \(o)")

        // A write sent to a query node goes to the writer; a second query node, which forwards
        // nothing, sees it at once with a strong read and refuses writes naming the writer.
        (s, o) = try harness.request(pr, "POST", "/v1/collections/c/upsert", #"{"documents":[{"id":99,"vector":[0,0,0,1]}]}"#)
        XCTAssertEqual(s, 200, "a query node forwards writes to the writer: \(o)")
        let p2 = 29000 + Int(getpid() % 1000)
        let cacheC = NSTemporaryDirectory() + "tidepool-serve-cache-c-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: cacheC) }
        let second = try harness.start(
            arguments: ["serve", "--storage", url, "--cache-dir", cacheC, "--read-only", "--no-forward-writes"], port: p2, environment: s3)
        defer { second.terminate() }
        (s, o) = try harness.request(pw, "POST", "/v1/collections/c/get", #"{"ids":[99]}"#)
        XCTAssertEqual((o["documents"] as? [[String: Any]])?.count, 1, "the forwarded write is on the writer: \(o)")
        for i in 100..<110 {
            (s, o) = try harness.request(pr, "POST", "/v1/collections/c/upsert", "{\"documents\":[{\"id\":\(i),\"vector\":[\(i),0,0,1]}]}")
            XCTAssertEqual(s, 200, "\(o)")
            (s, o) = try harness.request(pr, "POST", "/v1/collections/c/get", "{\"ids\":[\(i)]}")
            XCTAssertEqual((o["documents"] as? [[String: Any]])?.count, 1, "node A misses write \(i): \(o)")
            (s, o) = try harness.request(p2, "POST", "/v1/collections/c/get", "{\"ids\":[\(i)]}")
            XCTAssertEqual((o["documents"] as? [[String: Any]])?.count, 1, "node B misses write \(i) that node A saw: \(o)")
        }
        (s, o) = try harness.request(pr, "POST", "/v1/collections/c/prewarm", nil)
        XCTAssertEqual(s, 200, "\(o)")
        XCTAssertNotNil(o["prewarmed_bytes"] as? Int, "\(o)")
        (s, o) = try harness.request(pr, "GET", "/metrics", nil)
        let metrics = o["_text"] as? String ?? ""
        for series in [
            "tidepool_cache_bytes", "tidepool_cache_hits", "tidepool_cache_misses", "tidepool_cache_evictions",
            "tidepool_object_store_requests{operation=\"HEAD\"}", "tidepool_object_store_request_seconds_sum",
            "tidepool_follow_staleness_seconds",
        ] {
            XCTAssertTrue(metrics.contains(series), "/metrics on a query node lacks \(series)")
        }
        (s, o) = try harness.request(p2, "POST", "/v1/collections/c/upsert", #"{"documents":[{"id":98,"vector":[0,0,0,1]}]}"#)
        XCTAssertEqual(s, 403, "with forwarding off a query node refuses writes: \(o)")
        let error = o["error"] as? [String: Any]
        XCTAssertEqual(error?["code"] as? String, "read_only")
        XCTAssertTrue((error?["message"] as? String ?? "").contains("127.0.0.1:\(pw)"), "the refusal names the writer: \(o)")
    }

    /// Strong reads on a query node under a lease on the writer's head ask nobody; the writer
    /// acknowledges a write only once the node knows it. A lease holder that stops (SIGSTOP)
    /// holds acknowledgements for at most its lease, after which writes are quick again and
    /// another node's strong reads see each of them; resumed, it sees them too.
    func testAPausedLeaseHolderDelaysAcknowledgementsAtMostItsLease() throws {
        let (bucket, s3) = try harness.objectStore()
        let url = "s3://\(bucket)/lease-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let caches = ["w", "a", "b"].map { NSTemporaryDirectory() + "tidepool-lease-cache-\($0)-\(getpid())" }
        defer { for c in caches { try? FileManager.default.removeItem(atPath: c) } }
        let (pw, pa, pb) = (27500 + Int(getpid() % 400), 28500 + Int(getpid() % 400), 29500 + Int(getpid() % 400))
        let writer = try harness.start(arguments: ["serve", "--storage", url, "--cache-dir", caches[0]], port: pw, environment: s3)
        defer { writer.terminate() }
        var (s, o) = try harness.request(pw, "POST", "/v1/collections", #"{"name":"c","dimension":2,"metric":"l2"}"#)
        XCTAssertEqual(s, 201, "\(o)")
        let a = try harness.start(
            arguments: ["serve", "--storage", url, "--cache-dir", caches[1], "--read-only"], port: pa, environment: s3)
        defer {
            kill(a.processIdentifier, SIGCONT)
            a.terminate()
        }
        let b = try harness.start(
            arguments: ["serve", "--storage", url, "--cache-dir", caches[2], "--read-only"], port: pb, environment: s3)
        defer { b.terminate() }
        func upsert(_ i: Int) throws -> Duration {
            let start = ContinuousClock.now
            let (s, o) = try harness.request(pw, "POST", "/v1/collections/c/upsert", "{\"documents\":[{\"id\":\(i),\"vector\":[\(i),0]}]}")
            XCTAssertEqual(s, 200, "\(o)")
            return ContinuousClock.now - start
        }
        func seen(_ port: Int, _ i: Int) throws -> Bool {
            let (_, o) = try harness.request(port, "POST", "/v1/collections/c/get", "{\"ids\":[\(i)]}")
            return (o["documents"] as? [[String: Any]])?.count == 1
        }
        _ = try upsert(0)
        for i in 1...30 {
            _ = try upsert(i)
            XCTAssertTrue(try seen(pa, i), "node A misses write \(i)")
            XCTAssertTrue(try seen(pb, i), "node B misses write \(i)")
        }
        (s, o) = try harness.request(pw, "GET", "/metrics", nil)
        XCTAssertTrue((o["_text"] as? String ?? "").contains("tidepool_head_leases 2"), "both nodes hold leases")

        kill(a.processIdentifier, SIGSTOP)
        let first = try upsert(100)
        XCTAssertLessThan(first, .milliseconds(2500), "held for A's lease at most")
        for i in 101...105 {
            XCTAssertLessThan(try upsert(i), .milliseconds(800), "A's lease has run out: not waited for")
            XCTAssertTrue(try seen(pb, i), "node B misses write \(i)")
        }
        kill(a.processIdentifier, SIGCONT)
        for i in 100...105 { XCTAssertTrue(try seen(pa, i), "node A, resumed, misses write \(i)") }
    }
}
