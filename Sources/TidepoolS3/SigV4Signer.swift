import Crypto
import Foundation

/// AWS Signature Version 4 for S3 (and any store that speaks it): the canonical request, the
/// string to sign and the `Authorization` header, computed as botocore computes them (the test
/// fixtures in `Tests/TidepoolS3Tests/Fixtures/sigv4.json` come from botocore itself).
///
/// S3 differs from other services in two ways that matter here: the path is encoded once and
/// never normalized, and the payload hash is always sent as `x-amz-content-sha256`.
public struct SigV4Signer: Sendable {
    public let credentials: S3Credentials
    public let region: String
    public let service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// What signing produced; `headers` are the ones to send (the given ones plus `host`,
    /// `x-amz-date`, `x-amz-content-sha256`, the session token and `authorization`).
    public struct Signed: Sendable {
        public var headers: [(name: String, value: String)]
        public var canonicalRequest: String
        public var stringToSign: String
        public var authorization: String
    }

    /// Signs one request.
    /// - Parameters:
    ///   - method: `GET`, `PUT`, …
    ///   - host: the `Host` header exactly as it will be sent (`host` or `host:port`).
    ///   - encodedPath: the request path, already encoded with `S3Encoding.path` (it is signed as is).
    ///   - query: query parameters, not encoded (a parameter without a value has an empty one).
    ///   - headers: the headers to send and sign besides the ones signing adds.
    ///   - payloadSHA256: the lowercase hex SHA-256 of the body.
    ///   - date: the signing time.
    public func sign(
        method: String, host: String, encodedPath: String, query: [(String, String)],
        headers: [(name: String, value: String)], payloadSHA256: String, date: Date
    ) -> Signed {
        let stamp = AmzDate(date)
        var all = headers
        all.append(("host", host))
        all.append(("x-amz-date", stamp.timestamp))
        all.append(("x-amz-content-sha256", payloadSHA256))
        if let token = credentials.sessionToken { all.append(("x-amz-security-token", token)) }

        // Header names lowercased and sorted; values trimmed with inner runs of spaces collapsed;
        // repeated names joined by commas.
        var byName: [String: [String]] = [:]
        for h in all { byName[h.name.lowercased(), default: []].append(Self.canonicalValue(h.value)) }
        let names = byName.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(byName[$0, default: []].joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let encodedQuery: [(name: String, value: String)] = query.map { (S3Encoding.component($0.0), S3Encoding.component($0.1)) }
        let sortedQuery = encodedQuery.sorted { a, b in a.name != b.name ? a.name < b.name : a.value < b.value }
        let canonicalQuery = sortedQuery.map { "\($0.name)=\($0.value)" }.joined(separator: "&")

        let canonicalRequest = [method, encodedPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadSHA256]
            .joined(separator: "\n")
        let scope = "\(stamp.day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", stamp.timestamp, scope, Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8)))]
            .joined(separator: "\n")

        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [stamp.day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        all.append(("authorization", authorization))
        return Signed(headers: all, canonicalRequest: canonicalRequest, stringToSign: stringToSign, authorization: authorization)
    }

    /// The hex SHA-256 of a body.
    public static func payloadHash(_ bytes: some DataProtocol) -> String { hex(SHA256.hash(data: bytes)) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func canonicalValue(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for ch in value.trimmingCharacters(in: .whitespaces) {
            if ch == " " {
                if !lastWasSpace { out.append(ch) }
                lastWasSpace = true
            } else {
                out.append(ch)
                lastWasSpace = false
            }
        }
        return out
    }
}

/// The two forms of the signing time: `20261130T235958Z` and `20261130`, always in UTC.
struct AmzDate {
    let timestamp: String
    let day: String

    init(_ date: Date) {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        day = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))"
        timestamp = "\(day)T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }
}

/// Percent-encoding as SigV4 and S3 want it: everything but `A–Z a–z 0–9 - _ . ~` is encoded
/// as UTF-8 bytes; a path keeps its `/`.
public enum S3Encoding {
    /// A query name or value, or any string in which `/` must be encoded.
    public static func component(_ s: String) -> String { encode(s, keepSlash: false) }
    /// An object key or path, `/` kept.
    public static func path(_ s: String) -> String { encode(s, keepSlash: true) }

    private static func encode(_ s: String, keepSlash: Bool) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: "/") where keepSlash:
                out.append(b)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
