import Atomics
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Tidepool

/// The process-wide Prometheus registry (swift-metrics can be bootstrapped once per process).
public enum TidepoolMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let r = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: r))
        return r
    }()
}

/// The Tidepool HTTP server over an open database, as a `Service`: run it in a `ServiceGroup`
/// with the shutdown signals (`tidepool serve` does). On graceful shutdown `/ready` turns 503
/// for `shutdownDelay`, then the server stops accepting and finishes the requests in flight,
/// the engine threads stop, and the database is closed.
public struct TidepoolServer: Service {
    /// The HTTP application alone (no shutdown notice): what tests run with HummingbirdTesting.
    public let application: Application<RouterResponder<TidepoolRequestContext>>
    let state: ServerState
    let shutdownDelay: TimeAmount
    let logger: Logger

    /// Builds the server over one database; throws when `configuration` does not validate.
    public init(database: Database, configuration: ServerConfiguration, logger: Logger = Logger(label: "tidepool.server")) throws {
        let served = SingleDatabase(database)
        try self.init(
            served: served,
            writeRouting: WriteForwardingMiddleware(
                database: database, forward: configuration.forwardWrites, maxBody: configuration.maxBodyBytes,
                timeout: configuration.requestTimeout),
            configuration: configuration, extraServices: [], logger: logger)
    }

    /// Builds a cluster node's server (`serve --peers`): each collection's writes go to its
    /// writer (`ClusterWriteRouting`), and `ClusterOwnership` keeps collections with their owners.
    public init(cluster: ClusterNode, configuration: ServerConfiguration, logger: Logger = Logger(label: "tidepool.server")) throws {
        try self.init(
            served: cluster,
            writeRouting: ClusterWriteRouting(node: cluster, maxBody: configuration.maxBodyBytes, timeout: configuration.requestTimeout),
            configuration: configuration, extraServices: [ClusterOwnership(node: cluster)], logger: logger)
    }

    private init(
        served: any ServedCollections, writeRouting: some RouterMiddleware<TidepoolRequestContext>, configuration: ServerConfiguration,
        extraServices: [any Service], logger: Logger
    ) throws {
        try configuration.validate()
        _ = TidepoolMetrics.registry
        let state = ServerState()
        let executor = EngineExecutor(
            readThreads: configuration.readThreads, writeThreads: configuration.writeThreads, maxInFlight: configuration.maxInFlight,
            maxInFlightPerKey: configuration.maxInFlightPerKey)
        let router = Router(context: TidepoolRequestContext.self)
        // Every request is logged with its id at debug level (`--log-level debug`); errors at info.
        router.middlewares.add(LogRequestsMiddleware(.debug))
        router.middlewares.add(NodeNameMiddleware(name: configuration.nodeName ?? "\(configuration.host):\(configuration.port)"))
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(GuardMiddleware(keys: configuration.keys))
        router.middlewares.add(CompressionMiddleware(maxBody: configuration.maxBodyBytes))
        router.middlewares.add(writeRouting)
        var api = API(
            served: served, executor: executor, maxBody: configuration.maxBodyBytes, timeout: configuration.requestTimeout,
            limits: configuration.limits)
        api.collectionLimits = CollectionLimits(
            rate: configuration.collectionRate, burst: configuration.collectionBurst, bytesRate: configuration.collectionBytesRate,
            bytesBurst: configuration.collectionBytesBurst
                ?? configuration.collectionBytesRate.map { max($0, Double(configuration.maxBodyBytes)) },
            backlog: configuration.collectionBacklog)
        api.register(router)
        OperationsRoutes(served: served, api: api, state: state).register(router)
        let timeouts = (configuration.headerTimeout, configuration.bodyTimeout)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionDeadlineHandler(headerTimeout: timeouts.0, bodyTimeout: timeouts.1)])
        var app = Application(
            router: router, server: .http1(configuration: http1),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections, logger: logger)),
            logger: logger)
        // Shut down in reverse order: the HTTP server drains, then the engine threads stop, then
        // the database closes.
        app.addServices(DatabaseCloser(served: served, logger: logger), executor)
        for service in extraServices { app.addServices(service) }
        application = app
        self.state = state
        shutdownDelay = configuration.shutdownDelay
        self.logger = logger
    }

    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [application, ShutdownNotice(state: state, delay: shutdownDelay, logger: logger)], logger: logger))
        try await group.run()
    }
}

/// Flags shared by the routes and the shutdown services.
final class ServerState: Sendable {
    let shuttingDown = ManagedAtomic<Bool>(false)
}

/// Marks the server as shutting down (so `/ready` answers 503) as soon as shutdown begins, and
/// holds the HTTP server open for `delay` so load balancers notice before connections are refused.
struct ShutdownNotice: Service {
    let state: ServerState
    let delay: TimeAmount
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        state.shuttingDown.store(true, ordering: .relaxed)
        logger.info("shutting down: /ready answers 503", metadata: ["delay_ms": "\(delay.nanoseconds / 1_000_000)"])
        if delay.nanoseconds > 0 { try? await Task.sleep(nanoseconds: UInt64(delay.nanoseconds)) }
    }
}

/// Closes the databases once everything that uses them has stopped.
struct DatabaseCloser: Service {
    let served: any ServedCollections
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("closing the database")
        try await NIOThreadPool.singleton.runIfActive { try served.close() }
    }
}
