import Atomics
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Tidepool

/// Settings of `tidepool serve`.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Keys allowed to call the API; empty means no key is accepted (only /health and /ready answer).
    public var keys: APIKeyring
    /// Larger request bodies get 413.
    public var maxBodyBytes: Int
    /// Requests beyond this many in flight get 429 at once.
    public var maxInFlight: Int

    public init(
        host: String = "127.0.0.1", port: Int = 8080, keys: APIKeyring, maxBodyBytes: Int = 64 << 20,
        maxInFlight: Int = 256
    ) {
        self.host = host
        self.port = port
        self.keys = keys
        self.maxBodyBytes = maxBodyBytes
        self.maxInFlight = maxInFlight
    }
}

/// Per-request state: the caller's key once authenticated.
public struct TidepoolRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var apiKey: APIKey?

    public init(source: Source) {
        coreContext = .init(source: source)
        apiKey = nil
    }
}

/// The process-wide Prometheus registry (swift-metrics can be bootstrapped once per process).
public enum TidepoolMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let r = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: r))
        return r
    }()
}

/// Authentication, admission control and error mapping around every route.
struct GuardMiddleware: RouterMiddleware {
    typealias Context = TidepoolRequestContext
    let keys: APIKeyring
    let inFlight: ManagedAtomic<Int>
    let maxInFlight: Int
    let state: ServerState

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/health" || path == "/ready" { return try await next(request, context) }
        if state.shuttingDown.load(ordering: .relaxed) {
            return APIError(.serviceUnavailable, "shutting_down", "the server is shutting down").response()
        }
        let now = inFlight.wrappingIncrementThenLoad(ordering: .relaxed)
        defer { inFlight.wrappingDecrement(ordering: .relaxed) }
        if now > maxInFlight {
            return APIError(.tooManyRequests, "overloaded", "more than \(maxInFlight) requests in flight; retry later").response()
        }
        var context = context
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else {
            return APIError(.unauthorized, "unauthorized", "missing 'Authorization: Bearer <key>' header").response()
        }
        guard let key = keys.lookup(String(auth.dropFirst(7))) else {
            return APIError(.unauthorized, "unauthorized", "unknown API key").response()
        }
        context.apiKey = key
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .contentTooLarge {
            return APIError(.contentTooLarge, "body_too_large", "request body is larger than the configured limit").response()
        } catch let e as HTTPError {
            return APIError(e.status, "http_error", e.body ?? "\(e.status)").response()
        } catch {
            return APIError.from(error).response()
        }
    }
}

/// Flags shared by the routes and the shutdown service.
final class ServerState: Sendable {
    let shuttingDown = ManagedAtomic<Bool>(false)
}

/// Closes the database after the HTTP server has drained, on SIGTERM/SIGINT.
struct DatabaseService: Service {
    let database: Database
    let state: ServerState
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        state.shuttingDown.store(true, ordering: .relaxed)
        logger.info("closing the database")
        try await NIOThreadPool.singleton.runIfActive { try database.close() }
    }
}

/// Builds the Tidepool HTTP application over an open database.
public func makeTidepoolApplication(
    database: Database, configuration: ServerConfiguration,
    logger: Logger = Logger(label: "tidepool.server")
) -> some ApplicationProtocol {
    _ = TidepoolMetrics.registry
    let state = ServerState()
    let router = Router(context: TidepoolRequestContext.self)
    // Every request is logged with its id at debug level (`--log-level debug`); errors at info.
    router.middlewares.add(LogRequestsMiddleware(.debug))
    router.middlewares.add(MetricsMiddleware())
    router.middlewares.add(
        GuardMiddleware(
            keys: configuration.keys, inFlight: ManagedAtomic(0),
            maxInFlight: configuration.maxInFlight, state: state))
    let api = API(database: database, maxBody: configuration.maxBodyBytes)
    api.register(router)
    router.get("/health") { _, _ in jsonResponse(["status": "ok"]) }
    router.get("/ready") { _, _ in
        state.shuttingDown.load(ordering: .relaxed)
            ? APIError(.serviceUnavailable, "shutting_down", "the server is shutting down").response()
            : jsonResponse(["status": "ready", "collections": database.collectionNames.count])
    }
    router.get("/metrics") { _, _ in
        api.recordGauges()
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: TidepoolMetrics.registry.emitToBuffer())))
    }
    var app = Application(
        router: router, configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
        logger: logger)
    app.addServices(DatabaseService(database: database, state: state, logger: logger))
    return app
}
