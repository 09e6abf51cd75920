import Foundation
import XCTest

/// `tidepool serve --storage s3://…` against a real store (SeaweedFS): a writer and a read-only
/// query node over the same prefix; a write acknowledged by the writer is seen at once through
/// the query node with strong reads, eventual reads report their staleness, and the query node
/// refuses writes.
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
        (s, o) = try harness.request(pr, "POST", "/v1/collections/c/upsert", #"{"documents":[{"id":99,"vector":[0,0,0,1]}]}"#)
        XCTAssertEqual(s, 403, "a query node refuses writes: \(o)")
        XCTAssertEqual((o["error"] as? [String: Any])?["code"] as? String, "read_only")
    }
}
