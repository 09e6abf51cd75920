import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Tidepool

/// Automatic writer takeover among a static set of peers (`tidepool serve --peers`), with the
/// object store as the only coordination: no consensus layer, no gossip.
///
/// A standby node serves as a query node while the writer the manifest names answers its
/// health checks. Once the writer has not answered for `takeoverAfter`, the live peer that comes
/// first in rendezvous order (a hash of the database location and each peer's URL, the same on
/// every node) opens the database as its writer: that commits a manifest version naming it, and
/// each collection's next WAL object fences the old writer, so a writer that was only paused
/// acknowledges nothing once it wakes. Two nodes that both believe they are first race for the
/// same manifest version; the store lets one win and the other stays a query node.
///
/// A writer that finds a manifest version after its own committed by someone else has been
/// superseded: it reopens the database as a query node, so it neither acknowledges writes nor
/// serves stale reads (its writes go to the new writer, as any query node's do).
public struct WriterTakeover: Service {
    public struct Settings: Sendable {
        /// This node's URL as its peers know it (`--advertise-url`); one of `peers`.
        public var selfURL: String
        /// Every node that may become the writer, this one included.
        public var peers: [String]
        /// How long the writer may fail its health checks before a peer takes over.
        public var takeoverAfter: Duration
        /// How often a standby checks the writer (a writer checks the manifest once a second).
        public var checkEvery: Duration
        /// The database's location, which seeds the rendezvous order.
        public var location: String

        public init(selfURL: String, peers: [String], takeoverAfter: Duration, checkEvery: Duration = .milliseconds(250), location: String)
        {
            self.selfURL = selfURL
            self.peers = peers
            self.takeoverAfter = takeoverAfter
            self.checkEvery = checkEvery
            self.location = location
        }
    }

    let handle: DatabaseHandle
    let settings: Settings
    /// Opens the database anew: as its writer (true) or as a following query node (false).
    let open: @Sendable (_ asWriter: Bool) throws -> Database
    let logger: Logger

    public init(
        handle: DatabaseHandle, settings: Settings, open: @escaping @Sendable (_ asWriter: Bool) throws -> Database, logger: Logger
    ) {
        self.handle = handle
        self.settings = settings
        self.open = open
        self.logger = logger
    }

    /// The peers in rendezvous order for `location`: the first live one takes over.
    public static func rendezvousOrder(_ peers: [String], location: String) -> [String] {
        func score(_ peer: String) -> UInt64 {
            SHA256.hash(data: Data((location + "\n" + peer).utf8)).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        }
        return peers.map { ($0, score($0)) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.map(\.0)
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastSeen = ContinuousClock.now
            var lastSupersededCheck = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.checkEvery)
                if Task.isCancelled { return }
                let db = handle.current
                if db.followsAWriter {
                    if let writer = db.writerURL, writer != settings.selfURL, await answersHealth(writer) {
                        lastSeen = .now
                        continue
                    }
                    guard ContinuousClock.now - lastSeen >= settings.takeoverAfter else { continue }
                    guard await firstLivePeer() == settings.selfURL else { continue }
                    logger.notice(
                        "the writer \(db.writerURL ?? "(none)") has not answered for \(settings.takeoverAfter): taking over as the writer")
                    await replace(asWriter: true)
                    lastSeen = .now
                } else if ContinuousClock.now - lastSupersededCheck >= .seconds(1) {
                    // Once a second is enough: until it reopens, a superseded writer is fenced
                    // for writes and answers no strong read its lease cannot vouch for.
                    lastSupersededCheck = .now
                    guard (try? await onEngineThread { try db.supersededAsWriter() }) == true else { continue }
                    logger.notice("another node took over as the writer: serving as a query node")
                    await replace(asWriter: false)
                    lastSeen = .now
                }
            }
        }
    }

    /// The first peer in rendezvous order that answers its health check (this node always does).
    private func firstLivePeer() async -> String? {
        for peer in Self.rendezvousOrder(settings.peers, location: settings.location) {
            if peer == settings.selfURL { return peer }
            if await answersHealth(peer) { return peer }
        }
        return nil
    }

    /// Closes the database served now and opens it the other way; on failure (another node won
    /// the race, the store is unreachable) the node opens it as a query node again.
    private func replace(asWriter: Bool) async {
        let started = ContinuousClock.now
        handle.beginSwitch()
        let old = handle.current
        let opened: Database? = await onEngineThreadOrNil { [open, logger] in
            do { try old.close() } catch { logger.warning("closing the database before the switch: \(error)") }
            do {
                return try open(asWriter)
            } catch {
                logger.warning("opening the database as \(asWriter ? "the writer" : "a query node") failed: \(error)")
                return asWriter ? try open(false) : nil
            }
        }
        handle.finishSwitch(to: opened)
        guard let opened else {
            logger.error("the database could not be opened again; requests answer 503 until it is")
            return
        }
        let took = ContinuousClock.now - started
        let ms = took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000
        logger.notice("serving as \(opened.followsAWriter ? "a query node" : "the writer")", metadata: ["switch_ms": "\(ms)"])
    }

    private func answersHealth(_ url: String) async -> Bool {
        do {
            let response = try await PeerHTTP.client.execute(HTTPClientRequest(url: url + "/health"), timeout: .milliseconds(500))
            _ = try? await response.body.collect(upTo: 1 << 12)
            return response.status == .ok
        } catch {
            return false
        }
    }

    private func onEngineThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    private func onEngineThreadOrNil<T: Sendable>(_ body: @escaping @Sendable () throws -> T?) async -> T? {
        (try? await NIOThreadPool.singleton.runIfActive(body)) ?? nil
    }
}
