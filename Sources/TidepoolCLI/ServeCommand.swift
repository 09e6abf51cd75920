import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Tidepool
import TidepoolServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP/JSON API over a data directory.",
        discussion: """
            Settings come from flags, then the environment, then --config (JSON). API keys come from \
            --api-keys-file, the TIDEPOOL_API_KEYS environment variable and the configuration file: entries \
            SECRET:rw, SECRET:ro or SECRET:rw:coll1|coll2, separated by commas or lines. Without a key only \
            /health and /ready answer. SIGTERM or SIGINT stops accepting, finishes in-flight requests and \
            closes the database.
            """)

    @Option(
        help: """
            JSON configuration file: data, storage, cache_dir, cache_bytes, host, port, sync, max_body_bytes, max_in_flight, max_in_flight_per_key, \
            max_connections, request_timeout_s, header_timeout_s, body_timeout_s, shutdown_delay_s, api_keys (flags override it).
            """)
    var config: String?
    @Option(help: "Data directory, created if missing (default ./tidepool-data).") var data: String?
    @OptionGroup var objects: ObjectStorageFlags
    @Option(help: "Address to bind (default 127.0.0.1).") var host: String?
    @Option(help: "Port to bind (default 8080).") var port: Int?
    @Option(help: "File of API keys.") var apiKeysFile: String?
    @Option(help: "Largest request body in bytes, 413 beyond (default 64 MiB).") var maxBodyBytes: Int?
    @Option(help: "Requests in flight before answering 429 (default 256).") var maxInFlight: Int?
    @Option(help: "Requests in flight for one API key before answering it 429 (default 3/4 of --max-in-flight).")
    var maxInFlightPerKey: Int?
    @Option(help: "Open connections before new ones wait to be accepted (default 1024).") var maxConnections: Int?
    @Option(help: "Seconds of engine time per request before 503 deadline_exceeded (default 30).") var requestTimeout: Double?
    @Option(help: "Seconds for a request head to arrive, also the keep-alive idle limit (default 30).") var headerTimeout: Double?
    @Option(help: "Seconds for a request body to arrive after its head (default 60).") var bodyTimeout: Double?
    @Option(help: "Seconds /ready answers 503 after SIGTERM before the server stops accepting (default 0).")
    var shutdownDelay: Double?
    @Option(help: "Durability of writes: always (default), batched or none.") var sync: String?
    @Flag(help: "Serve reads only (a query node over object storage beside its writer); writes answer 403 read_only.")
    var readOnly = false
    @Option(help: "A query node on object storage catches up with its writer this often, in seconds (default 1).")
    var followInterval: Double?
    @Option(
        help: ArgumentHelp(
            "The URL this writer is reached at, recorded in the manifest for query nodes (default http://HOST:PORT; none when --host is a wildcard).",
            valueName: "url"))
    var advertiseURL: String?
    @Option(
        help: ArgumentHelp(
            "Collections to bring into memory before serving (comma-separated, or 'all'); see POST /v1/collections/{name}/prewarm.",
            valueName: "names"))
    var prewarm: String?
    @Option(
        help: ArgumentHelp(
            "Memory, in MB, the searches should keep to: segments that do not fit are searched from disk (the cold tier; docs/COLD_TIER.md). On a cluster node, per collection.",
            valueName: "MB"))
    var memoryBudget: Int?
    @Option(help: "Versions of each collection kept whatever their age, for reads as of them, restores and branches (default 10).")
    var keepVersions: Int?
    @Option(help: "Hours versions are kept (default 2); replaced segment files stay on disk as long.")
    var keepVersionsHours: Double?
    @Option(help: "On object storage: least seconds between two WAL writes' starts, a floor on PUT cost (default 0).")
    var walMinSpacing: Double?
    @Option(help: "On object storage: seconds a replaced segment file stays for query nodes on older versions (default 600).")
    var garbageGrace: Double?
    @Flag(
        inversion: .prefixedNo,
        help: "On a query node: forward writes to the writer the manifest names (default), or refuse them naming it.")
    var forwardWrites = true
    @Option(
        help: """
            query (reads only, as --read-only; with --peers it sends writes to each collection's writer), ingest or all \
            (the default: with --peers, this node may own collections' writes).
            """)
    var role: String?
    @Option(
        help: ArgumentHelp(
            "On object storage: run as a node of a cluster whose nodes that may own collections are these URLs, comma-separated "
                + "(this one's --advertise-url among them unless --role query). The location then holds a database per collection; "
                + "each collection is written by the first live peer in its rendezvous order, and taken over by the next once its "
                + "writer has not answered for --takeover-after seconds.",
            valueName: "urls"))
    var peers: String?
    @Option(help: "With --peers: seconds a collection's writer may fail its health checks before another node takes it over (default 3).")
    var takeoverAfter: Double?
    @Option(
        help:
            "With --peers: seconds after which a collection this node follows and has not used is closed (default 300; more than --request-timeout)."
    )
    var closeIdleAfter: Double?
    @Option(help: "Requests a second one collection may take, 429 rate_limited with Retry-After beyond (default: no limit).")
    var collectionRate: Double?
    @Option(help: "With --collection-rate: the largest burst one collection may send at once (default: the rate).")
    var collectionBurst: Double?
    @Option(help: "Request-body bytes a second one collection may send, 429 rate_limited with Retry-After beyond (default: no limit).")
    var collectionBytesRate: Double?
    @Option(help: "With --collection-bytes-rate: the largest burst in bytes (default: the larger of the rate and --max-body-bytes).")
    var collectionBytesBurst: Double?
    @Option(help: "Rows one collection may hold written but not yet indexed; upserts beyond get 429 backlog_full (default: no limit).")
    var collectionBacklog: Int?
    @Option(help: "This node's name in the X-Tidepool-Node header of every response (default host:port).")
    var nodeName: String?
    @Option(help: "Log level: trace, debug (every request with its id), info (default), notice, warning, error.")
    var logLevel: String?

    /// The optional configuration file's settings.
    struct FileSettings: Decodable {
        var data: String?
        var storage: String?
        var cache_dir: String?
        var cache_bytes: Int?
        var host: String?
        var port: Int?
        var sync: String?
        var max_body_bytes: Int?
        var max_in_flight: Int?
        var max_in_flight_per_key: Int?
        var max_connections: Int?
        var request_timeout_s: Double?
        var header_timeout_s: Double?
        var body_timeout_s: Double?
        var shutdown_delay_s: Double?
        var api_keys: [String]?
    }

    func run() async throws {
        var file = FileSettings()
        if let config {
            guard let bytes = FileManager.default.contents(atPath: config) else { throw ValidationError("cannot read --config \(config)") }
            do { file = try JSONDecoder().decode(FileSettings.self, from: bytes) } catch {
                throw ValidationError("--config \(config) is not a valid configuration: \(error)")
            }
        }
        let storage = objects.storage ?? file.storage
        guard storage == nil || (self.data ?? file.data) == nil else { throw ValidationError("give --data or --storage, not both") }
        try ObjectStorageFlags.check(storage: storage)
        let data = storage ?? self.data ?? file.data ?? "./tidepool-data"
        let host = self.host ?? file.host ?? "127.0.0.1"
        let port = self.port ?? file.port ?? 8080
        guard (1...65535).contains(port) else { throw ValidationError("--port must be in 1...65535, got \(port)") }
        if let advertiseURL, !(advertiseURL.hasPrefix("http://") || advertiseURL.hasPrefix("https://")) {
            throw ValidationError("--advertise-url must be an http:// or https:// URL, got '\(advertiseURL)'")
        }
        let role = self.role ?? (readOnly ? "query" : "all")
        guard ["query", "ingest", "all"].contains(role) else { throw ValidationError("--role must be query, ingest or all, got '\(role)'") }
        if role == "ingest" && peers == nil { throw ValidationError("--role ingest is for cluster nodes (--peers)") }
        if readOnly && role != "query" { throw ValidationError("--read-only is --role query; it cannot go with --role \(role)") }
        let queryOnly = role == "query"
        let wildcard = host == "0.0.0.0" || host == "::"
        let advertised = advertiseURL ?? (wildcard ? nil : "http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
        let objectStorage = objects.options(
            cacheDirectory: file.cache_dir, cacheBytes: file.cache_bytes, advertisedURL: advertised,
            walMinSpacing: try durationFlag(walMinSpacing, 0, "wal-min-spacing", max: 10),
            garbageGrace: try durationFlag(garbageGrace, 600, "garbage-grace", max: 7 * 86_400))
        let maxBodyBytes = self.maxBodyBytes ?? file.max_body_bytes ?? 64 << 20
        let maxInFlight = self.maxInFlight ?? file.max_in_flight ?? 256
        let sync = self.sync ?? file.sync ?? "always"
        var spec = (file.api_keys ?? []).joined(separator: "\n") + "\n" + (ProcessInfo.processInfo.environment["TIDEPOOL_API_KEYS"] ?? "")
        if let apiKeysFile {
            guard let text = try? String(contentsOfFile: apiKeysFile, encoding: .utf8) else {
                throw ValidationError("cannot read --api-keys-file \(apiKeysFile)")
            }
            spec += "\n" + text
        }
        let keys: APIKeyring
        do { keys = try APIKeyring(spec: spec) } catch { throw ValidationError("\(error)") }
        if keys.keys.isEmpty {
            note("warning: no API keys configured (TIDEPOOL_API_KEYS or --api-keys-file): only /health and /ready will answer")
        }
        let policy = try parseSync(sync)
        func seconds(_ flag: Double?, _ file: Double?, _ d: Double, _ name: String, allowZero: Bool = false) throws -> TimeAmount {
            let v = flag ?? file ?? d
            guard v.isFinite, allowZero ? v >= 0 : v > 0, v <= 86_400 else {
                throw ValidationError("--\(name) must be \(allowZero ? "0" : "more than 0") to 86400 seconds, got \(v)")
            }
            return .nanoseconds(Int64(v * 1e9))
        }
        var configuration = ServerConfiguration(
            host: host, port: port, keys: keys, maxBodyBytes: maxBodyBytes, maxInFlight: maxInFlight,
            maxInFlightPerKey: self.maxInFlightPerKey ?? file.max_in_flight_per_key,
            maxConnections: self.maxConnections ?? file.max_connections ?? 1024,
            requestTimeout: try seconds(requestTimeout, file.request_timeout_s, 30, "request-timeout"),
            headerTimeout: try seconds(headerTimeout, file.header_timeout_s, 30, "header-timeout"),
            bodyTimeout: try seconds(bodyTimeout, file.body_timeout_s, 60, "body-timeout"),
            shutdownDelay: try seconds(shutdownDelay, file.shutdown_delay_s, 0, "shutdown-delay", allowZero: true),
            forwardWrites: forwardWrites, nodeName: nodeName)
        configuration.collectionRate = collectionRate
        configuration.collectionBurst = collectionBurst
        configuration.collectionBytesRate = collectionBytesRate
        configuration.collectionBytesBurst = collectionBytesBurst
        configuration.collectionBacklog = collectionBacklog
        do { try configuration.validate() } catch { throw ValidationError(error.message) }
        guard let level = Logger.Level(rawValue: logLevel ?? "info") else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { LogfmtLogHandler(label: $0, level: level) }
        let logger = Logger(label: "tidepool")
        let started = monotonicSeconds()
        let every = followInterval ?? 1
        guard every.isFinite, every > 0, every <= 3600 else {
            throw ValidationError("--follow-interval must be more than 0 to 3600 seconds")
        }
        if let b = memoryBudget, b < 1 || b > 1 << 30 {
            throw ValidationError("--memory-budget must be 1 to \(1 << 30) MB, got \(b)")
        }
        if let n = keepVersions, n < 1 || n > 1_000_000 { throw ValidationError("--keep-versions must be 1 to 1000000, got \(n)") }
        if let h = keepVersionsHours, !h.isFinite || h < 0 || h > 24 * 366 {
            throw ValidationError("--keep-versions-hours must be 0 to 8784")
        }
        let retention = VersionRetention(
            keepLast: keepVersions ?? VersionRetention().keepLast,
            keepFor: keepVersionsHours.map { .milliseconds(Int64($0 * 3_600_000)) } ?? VersionRetention().keepFor)
        let options = DatabaseOptions(
            syncPolicy: policy, logger: logger, memoryBudget: memoryBudget.map { $0 << 20 }, versionRetention: retention)
        let served: any ServedCollections
        let server: TidepoolServer
        do {
            if let cluster = try clusterSettings(
                storage: storage, advertised: advertised, role: role, followEvery: every, databaseOptions: options,
                requestTimeout: configuration.requestTimeout)
            {
                let node = ClusterNode(storage: try ClusterStorage(url: data, options: objectStorage, logger: logger), settings: cluster)
                served = node
                server = try TidepoolServer(cluster: node, configuration: configuration, logger: logger)
            } else {
                var options = options
                options.readOnly = queryOnly
                options.createIfMissing = !queryOnly
                let db = try Database(url: data, options: options, objectStorage: objectStorage)
                if queryOnly { db.follow(every: .milliseconds(Int64(every * 1000))) }
                served = SingleDatabase(db)
                server = try TidepoolServer(database: db, configuration: configuration, logger: logger)
            }
        } catch let e as TidepoolError {
            note("error: \(e)")
            throw ExitCode(1)
        }
        if let prewarm {
            do {
                let names = prewarm == "all" ? try served.collectionNames() : prewarm.split(separator: ",").map { String($0) }
                for name in names {
                    let bytes = try served.database(for: name).collection(name).prewarm()
                    note("prewarmed '\(name)': \(bytes >> 20) MiB")
                }
            } catch {
                note("error: --prewarm: \(error)")
                try? served.close()
                throw ExitCode(1)
            }
        }
        note(
            String(
                format: "opened %@ (%d collections) in %.0f ms; listening on http://%@:%d", data, served.openCollectionCount,
                (monotonicSeconds() - started) * 1000, host, port))
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// A flag in seconds as a `Duration`, checked to be finite and in 0...max.
    private func durationFlag(_ value: Double?, _ fallback: Double, _ name: String, max: Double) throws -> Duration {
        let v = value ?? fallback
        guard v.isFinite, v >= 0, v <= max else { throw ValidationError("--\(name) must be 0 to \(max) seconds, got \(v)") }
        return .milliseconds(Int64(v * 1000))
    }
}
