import ArgumentParser
import Foundation
import Logging
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

    @Option(help: "JSON configuration file: data, host, port, sync, max_body_bytes, max_in_flight, api_keys (flags override it).")
    var config: String?
    @Option(help: "Data directory, created if missing (default ./tidepool-data).") var data: String?
    @Option(help: "Address to bind (default 127.0.0.1).") var host: String?
    @Option(help: "Port to bind (default 8080).") var port: Int?
    @Option(help: "File of API keys.") var apiKeysFile: String?
    @Option(help: "Largest request body in bytes, 413 beyond (default 64 MiB).") var maxBodyBytes: Int?
    @Option(help: "Requests in flight before answering 429 (default 256).") var maxInFlight: Int?
    @Option(help: "Durability of writes: always (default), batched or none.") var sync: String?
    @Option(help: "Log level: trace, debug (every request with its id), info (default), notice, warning, error.")
    var logLevel: String?

    /// The optional configuration file's settings.
    struct FileSettings: Decodable {
        var data: String?
        var host: String?
        var port: Int?
        var sync: String?
        var max_body_bytes: Int?
        var max_in_flight: Int?
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
        let data = self.data ?? file.data ?? "./tidepool-data"
        let host = self.host ?? file.host ?? "127.0.0.1"
        let port = self.port ?? file.port ?? 8080
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
        guard let level = Logger.Level(rawValue: logLevel ?? "info") else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { LogfmtLogHandler(label: $0, level: level) }
        let logger = Logger(label: "tidepool")
        let started = monotonicSeconds()
        let db: Database
        do { db = try Database(path: data, options: DatabaseOptions(syncPolicy: policy, logger: logger)) } catch let e as TidepoolError {
            note("error: \(e)")
            throw ExitCode(1)
        }
        note(
            String(
                format: "opened %@ (%d collections) in %.0f ms; listening on http://%@:%d", data, db.collectionNames.count,
                (monotonicSeconds() - started) * 1000, host, port))
        let app = makeTidepoolApplication(
            database: db,
            configuration: ServerConfiguration(
                host: host, port: port, keys: keys, maxBodyBytes: maxBodyBytes, maxInFlight: maxInFlight), logger: logger)
        try await app.runService()
    }
}
