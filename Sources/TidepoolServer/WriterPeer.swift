import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Tidepool

/// The HTTP client for requests between nodes (heads, forwarded writes, leases, health checks):
/// a refused connection fails at once instead of being retried until the connect timeout, so a
/// dead writer costs a forwarded write milliseconds, not seconds. One for the process; it lives
/// as long as the process.
enum PeerHTTP {
    static let client = make(connectionsPerPeer: 64)

    /// Health checks have a client of their own: a check must never wait for a connection
    /// behind forwarded writes that a slow store holds up (a peer would look gone, and be
    /// taken over, for being busy).
    static let healthClient = make(connectionsPerPeer: 2)

    private static func make(connectionsPerPeer: Int) -> HTTPClient {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerPeer
        let config = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(1)), connectionPool: pool)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }
}

/// A query node's requests to its writer (the URL the manifest names): the writer's head for a
/// strong read, and writes forwarded as they came. The caller's own `Authorization` goes along,
/// so the writer checks the same rights the query node checked.
struct WriterPeer: Sendable {
    /// How long a strong read waits for the writer's head before probing the store instead.
    var headTimeout: TimeAmount = .milliseconds(500)

    /// Requests for heads in flight, shared by the strong reads that began before them.
    let flights = HeadFlights()

    /// The writer's head for `collection` as it answers a request sent after `start`, or nil when
    /// the writer does not answer in time (down, replaced, or unable to vouch for it): the caller
    /// then probes the store. Concurrent reads share one request when it was sent after they began.
    func head(writer: String, collection: String, authorization: String?, since start: ContinuousClock.Instant) async -> WriterHead? {
        await flights.join(writer + " " + collection, since: start) {
            await self.fetchHead(writer: writer, collection: collection, authorization: authorization)
        }
    }

    private func fetchHead(writer: String, collection: String, authorization: String?) async -> WriterHead? {
        var request = HTTPClientRequest(url: writer + "/v1/collections/" + Self.pathSegment(collection) + "/head")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        do {
            let response = try await PeerHTTP.client.execute(request, timeout: headTimeout)
            let body = try await response.body.collect(upTo: 1 << 16)
            guard response.status == .ok,
                let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                let version = (object["manifest_version"] as? NSNumber)?.uint64Value,
                let head = (object["wal_head"] as? NSNumber)?.uint64Value
            else { return nil }
            return WriterHead(manifestVersion: version, walHead: head)
        } catch {
            return nil
        }
    }

    /// The writer's answer to a forwarded write, and the error code in it, if any.
    struct Forwarded {
        let response: Response
        let errorCode: String?
    }

    /// Sends `request` (its method, path, query, body and `Authorization`, and `headers`) to the
    /// writer and returns the writer's answer as it came, marked with `X-Tidepool-Forwarded-To`.
    func forward(
        _ request: Request, body: ByteBuffer, to writer: String, timeout: TimeAmount, headers extra: [(HTTPField.Name, String)] = []
    ) async throws -> Forwarded {
        var out = HTTPClientRequest(url: writer + request.uri.description)
        out.method = HTTPMethod(rawValue: request.method.rawValue)
        if let auth = request.headers[.authorization] { out.headers.add(name: "Authorization", value: auth) }
        for (name, value) in extra { out.headers.add(name: name.rawName, value: value) }
        out.headers.add(name: "Content-Type", value: "application/json")
        out.body = .bytes(body)
        let answer: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            answer = try await PeerHTTP.client.execute(out, timeout: timeout)
        } catch {
            throw ForwardFailure(
                notSent: Self.neverConnected(error),
                error: APIError(
                    .serviceUnavailable, "writer_unavailable",
                    "this node serves reads only and the writer at \(writer) did not answer the forwarded write: \(error)"))
        }
        do { bytes = try await answer.body.collect(upTo: 256 << 20) } catch {
            throw ForwardFailure(
                notSent: false,
                error: APIError(
                    .serviceUnavailable, "writer_unavailable",
                    "the writer at \(writer) did not finish its answer to the forwarded write: \(error)"))
        }
        var headers = HTTPFields()
        headers[.contentType] = answer.headers.first(name: "Content-Type") ?? "application/json"
        if let name = HTTPField.Name("X-Tidepool-Forwarded-To") { headers[name] = writer }
        if let retry = answer.headers.first(name: "Retry-After") { headers[.retryAfter] = retry }
        var code: String?
        if answer.status.code >= 400,
            let object = try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any],
            let error = object["error"] as? [String: Any]
        {
            code = error["code"] as? String
        }
        return Forwarded(
            response: Response(status: .init(code: Int(answer.status.code)), headers: headers, body: .init(byteBuffer: bytes)),
            errorCode: code)
    }

    /// A forwarded write that failed, and whether it certainly never reached the writer (no
    /// connection was made: it may be sent elsewhere without being applied twice).
    struct ForwardFailure: Error {
        let notSent: Bool
        let error: APIError
    }

    /// Whether `error` says no connection was ever made.
    static func neverConnected(_ error: any Error) -> Bool {
        if let e = error as? HTTPClientError { return e == .connectTimeout }
        if let e = error as? IOError { return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(e.errnoCode) }
        if error is NIOConnectionError { return true }
        if case ChannelError.connectTimeout = error { return true }
        return false
    }

    static func pathSegment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}

/// One request for a writer's head per key at a time: a caller joins the one in flight if it was
/// sent after the caller began (so its answer covers every write acknowledged before that),
/// and starts a new one otherwise.
final class HeadFlights: Sendable {
    private struct Flight {
        let sent: ContinuousClock.Instant
        let task: Task<WriterHead?, Never>
    }
    private let flights = NIOLockedValueBox<[String: Flight]>([:])

    func join(
        _ key: String, since start: ContinuousClock.Instant, _ fetch: @escaping @Sendable () async -> WriterHead?
    ) async -> WriterHead? {
        let (task, sent) = flights.withLockedValue { f -> (Task<WriterHead?, Never>, ContinuousClock.Instant) in
            if let flight = f[key], flight.sent >= start { return (flight.task, flight.sent) }
            // Taken before the request goes out, so the request is sent after `sent`.
            let sent = ContinuousClock.now
            let task = Task { await fetch() }
            f[key] = Flight(sent: sent, task: task)
            return (task, sent)
        }
        let head = await task.value
        // Only flights in progress are kept: a finished one can serve no read that begins later.
        flights.withLockedValue { f in if f[key]?.sent == sent { f[key] = nil } }
        return head
    }
}

/// On a query node over object storage: writes go to the writer the manifest names
/// (`WriterPeer.forward`), or, with forwarding off or no writer serving HTTP, are refused with
/// 403 `read_only` naming where to send them. Runs after `GuardMiddleware` (the caller is known).
struct WriteForwardingMiddleware: RouterMiddleware {
    typealias Context = TidepoolRequestContext
    let database: Database
    let forward: Bool
    let maxBody: Int
    let timeout: TimeAmount
    let peer = WriterPeer()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard database.followsAWriter, Self.isWrite(request.method, request.uri.path) else { return try await next(request, context) }
        guard let writer = database.writerURL else {
            throw APIError(
                .forbidden, "read_only", "this node serves reads only, and its writer serves no HTTP API to forward writes to")
        }
        guard forward else {
            throw APIError(
                .forbidden, "read_only", "this node serves reads only (forwarding is off); send writes to the writer at \(writer)")
        }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maxBody) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "request body is larger than \(maxBody) bytes")
        }
        do {
            return try await peer.forward(request, body: body, to: writer, timeout: timeout).response
        } catch let failure as WriterPeer.ForwardFailure {
            // The writer may just have been replaced: the manifest names its successor. A write
            // that never reached the old one goes to the new one (once); any other is answered
            // 503, as its outcome is unknown.
            guard failure.notSent else { throw failure.error }
            let since = ContinuousClock.now
            try? await NIOThreadPool.singleton.runIfActive { try database.catchUp(since: since) }
            guard let next = database.writerURL, next != writer else { throw failure.error }
            do {
                return try await peer.forward(request, body: body, to: next, timeout: timeout).response
            } catch let again as WriterPeer.ForwardFailure {
                throw again.error
            }
        }
    }

    /// The routes that change data: create, change or drop a collection, upsert, delete, compact.
    static func isWrite(_ method: HTTPRequest.Method, _ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0] == "v1", parts[1] == "collections" else { return false }
        switch (method, parts.count) {
        case (.post, 2): return true
        case (.patch, 3), (.delete, 3): return true
        case (.post, 4): return parts[3] == "upsert" || parts[3] == "delete" || parts[3] == "compact"
        default: return false
        }
    }
}
