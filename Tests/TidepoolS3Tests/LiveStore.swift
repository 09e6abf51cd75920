import Foundation
import XCTest

@testable import TidepoolS3

/// The real S3-compatible store the tests run against: SeaweedFS, started by `.ci/run` (or
/// `scripts/seaweedfs.sh start`), named by `TIDEPOOL_TEST_S3_ENDPOINT`, with credentials in
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` and a bucket in `TIDEPOOL_TEST_S3_BUCKET`.
/// Without it the tests that need it skip, loudly; with `TIDEPOOL_REQUIRE_S3=1` (CI) they fail.
enum LiveStore {
    static var env: [String: String] { ProcessInfo.processInfo.environment }

    /// The store's endpoint, or a skip (a failure where the store is required).
    static func endpoint(file: StaticString = #filePath, line: UInt = #line) throws -> S3Endpoint {
        guard let url = env["TIDEPOOL_TEST_S3_ENDPOINT"] else {
            let message =
                "NO OBJECT STORE: TIDEPOOL_TEST_S3_ENDPOINT is not set, so the tests against a real S3 store did not run "
                + "(start one with scripts/seaweedfs.sh start and export what it prints)"
            print("warning: " + message)
            if env["TIDEPOOL_REQUIRE_S3"] == "1" { XCTFail(message, file: file, line: line) }
            throw XCTSkip(message, file: file, line: line)
        }
        return try S3Endpoint.fromEnvironment(env, endpoint: url, pathStyle: true)
    }

    static var bucket: String { env["TIDEPOOL_TEST_S3_BUCKET"] ?? "tidepool-test" }

    /// A client for the test bucket, and a fresh prefix no other test uses.
    static func client(file: StaticString = #filePath, line: UInt = #line) throws -> (S3Client, String) {
        let client = try S3Client(endpoint: try endpoint(file: file, line: line), bucket: bucket)
        return (client, "test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }
}
