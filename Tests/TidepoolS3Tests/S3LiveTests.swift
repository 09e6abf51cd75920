import Foundation
import XCTest

@testable import TidepoolS3

/// The client against a real store (SeaweedFS): everything Tidepool relies on, and clear errors
/// for wrong credentials, a missing bucket and an unreachable endpoint.
final class S3LiveTests: XCTestCase {
    func testTheStoreGivesEverythingTidepoolReliesOn() throws {
        let (client, prefix) = try LiveStore.client()
        let report = S3Conformance.run(client, prefix: prefix)
        for c in report.checks { XCTAssertTrue(c.passed, "\(c.name): \(c.detail)") }
        XCTAssertEqual(report.checks.count, 9)
        XCTAssertTrue(report.canWrite)
        XCTAssertEqual(try client.list(prefix: prefix), [], "the check removes its scratch objects")
    }

    func testObjectsRoundTripWithRangesMetadataAndConditions() throws {
        let (client, prefix) = try LiveStore.client()
        let key = prefix + "/odd name ü+%/x"
        XCTAssertNil(try client.get(key))
        XCTAssertNil(try client.head(key))
        guard case .written(let first) = try client.create(key, Array("hello world".utf8), metadata: ["commit-token": "t1"]) else {
            return XCTFail("the first create was refused")
        }
        XCTAssertEqual(try client.create(key, [1]), .conditionFailed)
        let info = try XCTUnwrap(try client.head(key))
        XCTAssertEqual(info.size, 11)
        XCTAssertEqual(info.metadata["commit-token"], "t1")
        XCTAssertEqual(try client.get(key, range: 6..<11)?.bytes, Array("world".utf8))
        XCTAssertEqual(try client.get(key, range: 6..<100)?.bytes, Array("world".utf8), "a range past the end is cut")
        let eTag = try XCTUnwrap(first ?? info.eTag)
        guard case .written = try client.replace(key, [2], ifMatch: eTag) else { return XCTFail("swap with the current ETag refused") }
        XCTAssertEqual(try client.replace(key, [3], ifMatch: eTag), .conditionFailed)
        XCTAssertEqual(try client.get(key)?.bytes, [2])
        XCTAssertEqual(try client.list(prefix: prefix + "/").map(\.key), [key])
        try client.delete(key)
        XCTAssertNil(try client.get(key))
    }

    func testLargeObjectsGoUpInParts() throws {
        let (client, prefix) = try LiveStore.client()
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<(11 << 20) + 12345).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try client.upload(prefix + "/big", bytes, partSize: 5 << 20, threshold: 8 << 20)
        XCTAssertEqual(client.stats.count("UploadPart"), 3)
        XCTAssertEqual(client.stats.count("CompleteMultipartUpload"), 1)
        XCTAssertEqual(try client.head(prefix + "/big")?.size, bytes.count)
        XCTAssertEqual(try client.get(prefix + "/big")?.bytes == bytes, true)
        XCTAssertEqual(
            try client.get(prefix + "/big", range: (6 << 20)..<((6 << 20) + 10))?.bytes, Array(bytes[(6 << 20)..<((6 << 20) + 10)]))
        try client.delete(prefix + "/big")
        // Created only if absent, in parts: a second upload of the same key is refused whole.
        XCTAssertNotEqual(
            try client.upload(prefix + "/once", bytes, ifAbsent: true, partSize: 5 << 20, threshold: 8 << 20), .conditionFailed)
        let other = bytes.map { $0 ^ 0xff }
        XCTAssertEqual(try client.upload(prefix + "/once", other, ifAbsent: true, partSize: 5 << 20, threshold: 8 << 20), .conditionFailed)
        XCTAssertEqual(try client.get(prefix + "/once", range: 0..<64)?.bytes, Array(bytes[0..<64]), "the first upload stands")
        try client.delete(prefix + "/once")
    }

    func testWrongCredentialsMissingBucketsAndDeadEndpointsAreClearErrors() throws {
        let good = try LiveStore.endpoint()
        var bad = good
        bad.credentials.secretAccessKey += "-wrong"
        let wrong = try S3Client(endpoint: bad, bucket: LiveStore.bucket)
        XCTAssertThrowsError(try wrong.get("anything")) { e in
            let e = e as? S3Error
            XCTAssertEqual(e?.kind, .accessDenied)
            XCTAssertEqual(e?.code, "SignatureDoesNotMatch")
            XCTAssertTrue(e?.description.contains("/\(LiveStore.bucket)/anything") ?? false, "\(String(describing: e))")
        }
        let refused = S3Conformance.run(wrong, prefix: "x")
        XCTAssertFalse(refused.canRead)
        XCTAssertFalse(refused.canWrite)
        XCTAssertEqual(refused.checks.count, 1, "nothing more is tried once the bucket cannot be reached")
        let missing = try S3Client(endpoint: good, bucket: "no-such-bucket-\(UInt32.random(in: 0...UInt32.max))")
        XCTAssertThrowsError(try missing.list(prefix: "")) { e in
            XCTAssertEqual((e as? S3Error)?.kind, .noSuchBucket, "\(e)")
        }
        // A port nothing listens on: refused at once, retried with backoff, then a clear error.
        var dead = try S3Endpoint(url: "http://127.0.0.1:9", region: "us-east-1", credentials: good.credentials, maxAttempts: 3)
        dead.requestTimeout = .seconds(2)
        let nowhere = try S3Client(endpoint: dead, bucket: "b-b-b")
        let start = ContinuousClock.now
        XCTAssertThrowsError(try nowhere.create("k", [1])) { e in
            let e = e as? S3Error
            XCTAssertEqual(e?.kind, .unreachable, "a create that never connected is not an unknown outcome: \(String(describing: e))")
            XCTAssertTrue(e?.description.contains("http://127.0.0.1:9/b-b-b/k") ?? false, "\(String(describing: e))")
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
    }
}
