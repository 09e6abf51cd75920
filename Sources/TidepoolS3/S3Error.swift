/// A failed object-store request: what was asked (`operation`, `url`), what kind of failure it
/// was, and what the store said.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A bad location, endpoint or setting, found before anything was sent.
        case configuration
        /// 403: wrong credentials, a bad signature or no permission.
        case accessDenied
        /// The bucket does not exist.
        case noSuchBucket
        /// A conditional request's condition did not hold (412, or 409 for a concurrent create).
        case preconditionFailed
        /// The store could not be reached, or the connection failed before an answer.
        case unreachable
        /// No answer within the request timeout.
        case timeout
        /// The store answered with an error status not listed above.
        case status(Int)
        /// A request that changes state may or may not have been applied (a timeout, a reset, a
        /// 5xx after it was sent). The caller must find out before relying on either outcome.
        case unknownOutcome
        /// An answer that does not parse as S3 answers do.
        case invalidResponse
        /// The store does not offer what the caller needs (conditional writes, say).
        case unsupported
    }

    public var kind: Kind
    /// What was asked: `GET`, `PUT if absent`, `ListObjectsV2`, …
    public var operation: String
    /// The URL asked, without credentials.
    public var url: String
    /// The store's error code (`SignatureDoesNotMatch`, `SlowDown`, …), when it gave one.
    public var code: String?
    public var message: String

    public init(_ kind: Kind, operation: String, url: String, code: String? = nil, message: String) {
        self.kind = kind
        self.operation = operation
        self.url = url
        self.code = code
        self.message = message
    }

    public var description: String {
        "object store \(operation) \(url) failed: " + (code.map { "\($0): " } ?? "") + message
    }
}
