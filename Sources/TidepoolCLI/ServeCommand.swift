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
        API keys come from --api-keys-file or the TIDEPOOL_API_KEYS environment variable: entries \
        SECRET:rw, SECRET:ro or SECRET:rw:coll1|coll2, separated by commas or lines. Without a key only \
        /health and /ready answer. SIGTERM or SIGINT stops accepting, finishes in-flight requests and \
        closes the database.
        """)

    @Option(help: "Data directory (created if missing).") var data: String = "./tidepool-data"
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port to bind.") var port: Int = 8080
    @Option(help: "File of API keys.") var apiKeysFile: String?
    @Option(help: "Largest request body in bytes (413 beyond).") var maxBodyBytes: Int = 64 << 20
    @Option(help: "Requests in flight before answering 429.") var maxInFlight: Int = 256
    @Option(help: "Durability of writes: always, batched or none.") var sync: String = "always"

    func run() async throws {
        var spec = ProcessInfo.processInfo.environment["TIDEPOOL_API_KEYS"] ?? ""
        if let apiKeysFile {
            guard let text = try? String(contentsOfFile: apiKeysFile, encoding: .utf8) else {
                throw ValidationError("cannot read --api-keys-file \(apiKeysFile)")
            }
            spec += "\n" + text
        }
        let keys: APIKeyring
        do { keys = try APIKeyring(spec: spec) } catch { throw ValidationError("\(error)") }
        if keys.keys.isEmpty { note("warning: no API keys configured (TIDEPOOL_API_KEYS or --api-keys-file): only /health and /ready will answer") }
        let policy = try parseSync(sync)
        var logger = Logger(label: "tidepool")
        logger.logLevel = .info
        let started = monotonicSeconds()
        let db: Database
        do { db = try Database(path: data, options: DatabaseOptions(syncPolicy: policy, logger: logger)) } catch let e as TidepoolError {
            note("error: \(e)")
            throw ExitCode(1)
        }
        note(String(format: "opened %@ (%d collections) in %.0f ms; listening on http://%@:%d", data, db.collectionNames.count,
                    (monotonicSeconds() - started) * 1000, host, port))
        let app = makeTidepoolApplication(database: db, configuration: ServerConfiguration(
            host: host, port: port, keys: keys, maxBodyBytes: maxBodyBytes, maxInFlight: maxInFlight), logger: logger)
        try await app.runService()
    }
}
