import Foundation

/// An access key pair, with the session token of temporary credentials.
public struct S3Credentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// A bucket and a key prefix, parsed from `s3://bucket/prefix`.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var bucket: String
    /// The key prefix everything lives under, without a leading or trailing `/` (may be empty).
    public var prefix: String

    /// Parses `s3://bucket` or `s3://bucket/some/prefix`; the bucket must be a valid S3 bucket name.
    public init(parsing url: String) throws {
        guard url.hasPrefix("s3://") else {
            throw S3Error(.configuration, operation: "parse", url: url, message: "an object storage location starts with s3://")
        }
        let rest = url.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        let prefix = rest.dropFirst(bucket.count).split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        guard Self.isValidBucket(String(bucket)) else {
            throw S3Error(
                .configuration, operation: "parse", url: url,
                message: "'\(bucket)' is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)")
        }
        guard !prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
            throw S3Error(.configuration, operation: "parse", url: url, message: "the prefix may not hold '.' or '..' parts")
        }
        self.bucket = String(bucket)
        self.prefix = prefix
    }

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix
    }

    /// The full key of a name under the prefix.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }

    static func isValidBucket(_ b: String) -> Bool {
        guard (3...63).contains(b.utf8.count), let first = b.utf8.first, let last = b.utf8.last else { return false }
        func alnum(_ c: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
        }
        return alnum(first) && alnum(last) && b.utf8.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }
}

/// Where the store is and how to reach it: endpoint, region, credentials, addressing, timeouts.
public struct S3Endpoint: Sendable, Equatable {
    /// `http` or `https`.
    public var scheme: String
    public var host: String
    /// The port, or nil for the scheme's default.
    public var port: Int?
    public var region: String
    public var credentials: S3Credentials
    /// Path-style addressing (`host/bucket/key`), as local stores want; otherwise virtual-hosted
    /// (`bucket.host/key`).
    public var pathStyle: Bool
    /// How long one request may take, from connect to the last byte of the answer.
    public var requestTimeout: Duration
    /// How many times a request that may be retried is tried in all.
    public var maxAttempts: Int

    public init(
        url: String, region: String, credentials: S3Credentials, pathStyle: Bool = true,
        requestTimeout: Duration = .seconds(30), maxAttempts: Int = 6
    ) throws {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = parts.host, !host.isEmpty
        else {
            throw S3Error(
                .configuration, operation: "configure", url: url, message: "the endpoint must be an http:// or https:// URL with a host")
        }
        guard parts.path.isEmpty || parts.path == "/", parts.query == nil else {
            throw S3Error(.configuration, operation: "configure", url: url, message: "the endpoint URL may not have a path or query")
        }
        guard !region.isEmpty, region.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") }) else {
            throw S3Error(.configuration, operation: "configure", url: url, message: "'\(region)' is not a region name")
        }
        guard maxAttempts >= 1, requestTimeout > .zero else {
            throw S3Error(.configuration, operation: "configure", url: url, message: "attempts and the request timeout must be positive")
        }
        self.scheme = scheme
        self.host = host
        self.port = parts.port
        self.region = region
        self.credentials = credentials
        self.pathStyle = pathStyle
        self.requestTimeout = requestTimeout
        self.maxAttempts = maxAttempts
    }

    /// The endpoint the AWS SDKs would use: `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (then
    /// path-style, as local stores want), else AWS itself in `AWS_REGION` / `AWS_DEFAULT_REGION`
    /// (default `us-east-1`), virtual-hosted; credentials from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`. Arguments given override the environment.
    public static func fromEnvironment(
        _ env: [String: String] = ProcessInfo.processInfo.environment, endpoint: String? = nil, region: String? = nil,
        pathStyle: Bool? = nil
    ) throws -> S3Endpoint {
        let region = region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let given = endpoint ?? env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"]
        guard let key = env["AWS_ACCESS_KEY_ID"], !key.isEmpty, let secret = env["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            throw S3Error(
                .configuration, operation: "configure", url: given ?? "s3.\(region).amazonaws.com",
                message: "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        let token = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let credentials = S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
        return try S3Endpoint(
            url: given ?? "https://s3.\(region).amazonaws.com", region: region, credentials: credentials,
            pathStyle: pathStyle ?? (given != nil))
    }

    /// The `Host` header for a bucket.
    func hostHeader(bucket: String) -> String {
        let h = pathStyle ? host : "\(bucket).\(host)"
        guard let port, port != (scheme == "https" ? 443 : 80) else { return h }
        return "\(h):\(port)"
    }

    /// The encoded path for a key in a bucket (`nil` key: the bucket itself).
    func encodedPath(bucket: String, key: String?) -> String {
        let k = key.map { S3Encoding.path($0) } ?? ""
        return pathStyle ? "/\(bucket)" + (key == nil ? "" : "/\(k)") : "/\(k)"
    }

    /// The endpoint as a URL string, for messages and requests.
    var base: String { "\(scheme)://\(host)" + (port.map { ":\($0)" } ?? "") }
}
