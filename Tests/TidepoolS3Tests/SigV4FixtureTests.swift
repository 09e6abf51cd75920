import Foundation
import XCTest

@testable import TidepoolS3

/// Tidepool's signer against requests botocore signed (scripts/sigv4_fixtures.py): the canonical
/// request, the string to sign and the Authorization header must match byte for byte.
final class SigV4FixtureTests: XCTestCase {
    struct Fixture: Decodable {
        var name, method, url, body, region, accessKey, secretKey, amzDate: String
        var headers: [String: String]
        var sessionToken: String?
        var canonicalRequest, stringToSign, authorization, contentSHA256: String
    }

    static let fixtures: [Fixture] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/sigv4.json")
        guard let data = try? Data(contentsOf: file), let f = try? JSONDecoder().decode([Fixture].self, from: data) else { return [] }
        return f
    }()

    func testEveryBotocoreFixtureSignsTheSame() throws {
        XCTAssertGreaterThanOrEqual(Self.fixtures.count, 12, "fixtures missing: run scripts/sigv4_fixtures.py")
        let parse = DateFormatter()
        parse.locale = Locale(identifier: "en_US_POSIX")
        parse.timeZone = TimeZone(identifier: "UTC")
        parse.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        for f in Self.fixtures {
            let parts = try XCTUnwrap(URLComponents(string: f.url), f.name)
            let host = try XCTUnwrap(parts.host) + (parts.port.map { ":\($0)" } ?? "")
            // The fixture's path is encoded as botocore sends it; Tidepool encodes keys itself.
            let path = parts.percentEncodedPath
            XCTAssertEqual(S3Encoding.path(try XCTUnwrap(path.removingPercentEncoding)), path, "\(f.name): key encoding")
            let query: [(String, String)] = (parts.percentEncodedQuery ?? "").split(separator: "&").map { item in
                let kv = item.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                return (kv[0], kv.count > 1 ? kv[1] : "")
            }
            let body = try XCTUnwrap(Data(base64Encoded: f.body))
            XCTAssertEqual(SigV4Signer.payloadHash(body), f.contentSHA256, "\(f.name): payload hash")
            let signer = SigV4Signer(
                credentials: S3Credentials(accessKeyID: f.accessKey, secretAccessKey: f.secretKey, sessionToken: f.sessionToken),
                region: f.region)
            let signed = signer.sign(
                method: f.method, host: host, encodedPath: path, query: query,
                headers: f.headers.map { (name: $0.key, value: $0.value) }, payloadSHA256: f.contentSHA256,
                date: try XCTUnwrap(parse.date(from: f.amzDate)))
            XCTAssertEqual(signed.canonicalRequest, f.canonicalRequest, "\(f.name): canonical request")
            XCTAssertEqual(signed.stringToSign, f.stringToSign, "\(f.name): string to sign")
            XCTAssertEqual(signed.authorization, f.authorization, "\(f.name): Authorization")
        }
    }

    func testLocationsAndEndpointsAreParsedStrictly() throws {
        let l = try S3Location(parsing: "s3://my-bucket/some//prefix/")
        XCTAssertEqual(l.bucket, "my-bucket")
        XCTAssertEqual(l.prefix, "some/prefix")
        XCTAssertEqual(l.key("MANIFEST"), "some/prefix/MANIFEST")
        XCTAssertEqual(try S3Location(parsing: "s3://bkt").key("x"), "x")
        for bad in ["http://b/p", "s3://", "s3://A-Bucket/p", "s3://ab/p", "s3://-bucket/p", "s3://bucket/a/../b"] {
            XCTAssertThrowsError(try S3Location(parsing: bad), bad) { e in
                XCTAssertEqual((e as? S3Error)?.kind, .configuration, bad)
            }
        }
        let env = ["AWS_ENDPOINT_URL": "http://127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"]
        let e = try S3Endpoint.fromEnvironment(env)
        XCTAssertTrue(e.pathStyle)
        XCTAssertEqual(e.region, "us-east-1")
        XCTAssertEqual(e.hostHeader(bucket: "b"), "127.0.0.1:8333")
        XCTAssertEqual(e.encodedPath(bucket: "b", key: "a b/c"), "/b/a%20b/c")
        let aws = try S3Endpoint.fromEnvironment(["AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"])
        XCTAssertFalse(aws.pathStyle)
        XCTAssertEqual(aws.hostHeader(bucket: "b"), "b.s3.eu-west-1.amazonaws.com")
        XCTAssertEqual(aws.encodedPath(bucket: "b", key: "k"), "/k")
        XCTAssertThrowsError(try S3Endpoint.fromEnvironment(["AWS_ENDPOINT_URL": "http://x"])) { e in
            XCTAssertTrue("\(e)".contains("AWS_ACCESS_KEY_ID"), "\(e)")
        }
        for bad in ["ftp://x", "http://", "http://x/path", "http://x?q=1"] {
            XCTAssertThrowsError(try S3Endpoint.fromEnvironment(env, endpoint: bad), bad)
        }
    }
}
