import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small S3 client: the requests Tidepool needs, signed with SigV4, each with a deadline, and
/// retried with jittered exponential backoff when that is safe.
///
/// Calls block the calling thread until the answer is in: they are meant for the engine's own
/// threads (flushes, the WAL leader, a query's section fetch), never an event loop — a call made
/// on one is refused with an error rather than deadlocking it.
///
/// Retries: reads, deletes, lists and unconditional writes are retried on throttling, 5xx answers
/// and connection failures. A conditional write is retried only when it certainly was not applied
/// (the connection never opened, `SlowDown`, 429, a 409 conflict); any other failure after it
/// was sent is an `unknownOutcome` error, for the caller to resolve by reading the object back.
public final class S3Client: Sendable {
    public let endpoint: S3Endpoint
    public let bucket: String
    let signer: SigV4Signer
    /// Every request this client made, by operation, with its latency.
    public let stats: S3RequestStats

    /// How long a store may send nothing on a request it was sent before the attempt fails
    /// (and is retried, or resolved by reading back, as its rule allows).
    static let silenceTimeout: TimeAmount = .seconds(5)

    /// One connection pool for every client in the process; it lives as long as the process, so it
    /// is never shut down.
    static let sharedHTTP: HTTPClient = {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        pool.idleTimeout = .seconds(30)
        // Refused connections fail at once, and are retried here, with backoff, within limits.
        pool.retryConnectionEstablishment = false
        // A store silent for `silenceTimeout` once a request is sent (a black-holed request, a
        // stalled answer) fails the attempt then, not at the request's deadline: a WAL commit
        // stuck behind one would hold every writer of its collection.
        var config = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: silenceTimeout), connectionPool: pool)
        config.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }()

    public init(endpoint: S3Endpoint, bucket: String, stats: S3RequestStats = S3RequestStats()) throws {
        guard S3Location.isValidBucket(bucket) else {
            throw S3Error(.configuration, operation: "configure", url: endpoint.base, message: "'\(bucket)' is not a bucket name")
        }
        self.endpoint = endpoint
        self.bucket = bucket
        self.signer = SigV4Signer(credentials: endpoint.credentials, region: endpoint.region)
        self.stats = stats
    }

    /// The URL of a key (or of the bucket), for messages.
    public func url(_ key: String?) -> String {
        "\(endpoint.scheme)://\(endpoint.hostHeader(bucket: bucket))\(endpoint.encodedPath(bucket: bucket, key: key))"
    }

    // MARK: - One request

    /// How a request may be retried.
    enum RetryRule {
        /// Any transient failure: reads, lists, deletes, whole-object writes of fixed content.
        case idempotent
        /// Only when it certainly was not applied; otherwise an `unknownOutcome` error.
        case conditional
    }

    struct Request {
        var method: HTTPMethod
        var key: String?
        var query: [(String, String)] = []
        var headers: [(name: String, value: String)] = []
        var body: [UInt8] = []
        /// For messages and metrics: `GET`, `PUT if absent`, `ListObjectsV2`, …
        var operation: String
        var retry: RetryRule = .idempotent
    }

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// Sends a request, retrying as its rule allows; answers with any status the store gave except
    /// the transient ones (which are retried, then thrown).
    func send(_ r: Request) throws -> Response {
        let url = url(r.key)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try perform(r, url: url)
                if attempt < endpoint.maxAttempts, Self.shouldRetry(status: response.status, code: Self.errorCode(response), rule: r.retry)
                {
                    backoff(attempt)
                    continue
                }
                if r.retry == .conditional, response.status >= 500, !Self.isThrottle(response) {
                    throw S3Error(
                        .unknownOutcome, operation: r.operation, url: url, code: Self.errorCode(response),
                        message: "the store answered \(response.status) after the request was sent; it may or may not have been applied")
                }
                return response
            } catch let e as TransportFailure {
                if attempt < endpoint.maxAttempts, r.retry == .idempotent || !e.maybeSent {
                    backoff(attempt)
                    continue
                }
                if r.retry == .conditional, e.maybeSent {
                    throw S3Error(
                        .unknownOutcome, operation: r.operation, url: url,
                        message: "\(e.description) after the request was sent; it may or may not have been applied")
                }
                throw S3Error(e.timedOut ? .timeout : .unreachable, operation: r.operation, url: url, message: e.description)
            }
        }
    }

    static func shouldRetry(status: Int, code: String?, rule: RetryRule) -> Bool {
        switch rule {
        case .idempotent: return status >= 500 || status == 429
        case .conditional: return status == 429 || code == "SlowDown" || (status == 409 && code == "ConditionalRequestConflict")
        }
    }

    static func isThrottle(_ r: Response) -> Bool { r.status == 429 || errorCode(r) == "SlowDown" }

    /// Full-jitter exponential backoff: a random wait up to 25 ms × 2^attempt, at most 2 s.
    private func backoff(_ attempt: Int) {
        let cap = min(2_000_000, 25_000 << min(attempt, 16))
        usleep(UInt32(Int.random(in: cap / 4...cap)))
    }

    /// A failure below HTTP: whether the request may have reached the store, and whether it was a timeout.
    struct TransportFailure: Error, CustomStringConvertible {
        var maybeSent: Bool
        var timedOut: Bool
        var description: String
    }

    /// One attempt.
    private func perform(_ r: Request, url: String) throws -> Response {
        if MultiThreadedEventLoopGroup.currentEventLoop != nil {
            throw S3Error(
                .configuration, operation: r.operation, url: url, message: "an object-store call was made on an event loop thread")
        }
        let host = endpoint.hostHeader(bucket: bucket)
        let path = endpoint.encodedPath(bucket: bucket, key: r.key)
        var headers = r.headers
        if r.method == .PUT || r.method == .POST {
            // The store checks the body against it, so a request cut off mid-way (its writer
            // killed) is refused rather than stored short: SeaweedFS, for one, stores an empty
            // object when the connection closes right after the head, unless Content-MD5 is sent.
            headers.append(("content-md5", Data(Insecure.MD5.hash(data: r.body)).base64EncodedString()))
        }
        let signed = signer.sign(
            method: r.method.rawValue, host: host, encodedPath: path, query: r.query, headers: headers,
            payloadSHA256: SigV4Signer.payloadHash(r.body), date: Date())
        let query = r.query.map { "\(S3Encoding.component($0.0))=\(S3Encoding.component($0.1))" }.joined(separator: "&")
        let full = "\(endpoint.scheme)://\(host)\(path)" + (query.isEmpty ? "" : "?" + query)
        var request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: full, method: r.method)
        } catch {
            throw S3Error(.configuration, operation: r.operation, url: url, message: "not a valid request URL: \(error)")
        }
        for h in signed.headers { request.headers.replaceOrAdd(name: h.name, value: h.value) }
        if !r.body.isEmpty || r.method == .PUT || r.method == .POST { request.body = .bytes(r.body) }
        let start = ContinuousClock.now
        defer { stats.record(r.operation, since: start) }
        do {
            let (seconds, attoseconds) = endpoint.requestTimeout.components
            let deadline = NIODeadline.now() + .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
            let response = try Self.sharedHTTP.execute(request: request, deadline: deadline).wait()
            return Response(
                status: Int(response.status.code), headers: response.headers, body: response.body.map { Array(buffer: $0) } ?? [])
        } catch let e as HTTPClientError {
            let notSent = e == .connectTimeout || e == .getConnectionFromPoolTimeout
            let timedOut = e == .deadlineExceeded || e == .readTimeout || e == .writeTimeout || e == .connectTimeout
            throw TransportFailure(maybeSent: !notSent, timedOut: timedOut, description: "\(e)")
        } catch let e as IOError where [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(e.errnoCode) {
            // The connection was never made, so nothing was sent.
            throw TransportFailure(maybeSent: false, timedOut: false, description: "cannot connect to \(endpoint.base): \(e)")
        } catch ChannelError.connectTimeout(let after) {
            throw TransportFailure(maybeSent: false, timedOut: true, description: "cannot connect to \(endpoint.base) within \(after)")
        } catch let e as NIOConnectionError {
            throw TransportFailure(maybeSent: false, timedOut: false, description: "cannot connect to \(endpoint.base): \(e)")
        } catch {
            throw TransportFailure(maybeSent: true, timedOut: false, description: "\(error)")
        }
    }

    // MARK: - Errors

    static func errorCode(_ r: Response) -> String? {
        guard r.status >= 300, !r.body.isEmpty else { return nil }
        return (try? S3XML.decode(S3XML.ErrorBody.self, r.body))?.code
    }

    /// The error for an answer that is not a success.
    func failure(_ r: Response, _ op: String, key: String?) -> S3Error {
        let body = r.body.isEmpty ? nil : try? S3XML.decode(S3XML.ErrorBody.self, r.body)
        let message = body?.message ?? "HTTP \(r.status)"
        let kind: S3Error.Kind
        switch (r.status, body?.code) {
        case (403, _): kind = .accessDenied
        case (_, "NoSuchBucket"): kind = .noSuchBucket
        case (412, _): kind = .preconditionFailed
        default: kind = .status(r.status)
        }
        return S3Error(kind, operation: op, url: url(key), code: body?.code ?? "HTTP \(r.status)", message: message)
    }
}
