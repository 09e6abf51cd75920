import AsyncHTTPClient
import Crypto
import Foundation
import NIOConcurrencyHelpers

/// What this node knows of the nodes that may own collections (`--peers`): each is asked
/// `GET /ready` every `checkEvery` or so. A peer is **gone** once its checks have failed for
/// `takeoverAfter` (a failed check at least that long after its last answer: time this node did
/// not spend asking never counts against a peer), or once it said it is shutting down; else it
/// is **live**. The collections a gone peer writes go to the next live peer in their rendezvous
/// order. Every node computes the same order, so nodes that see the same peers agree on each
/// collection's owner without talking to each other; nodes that disagree for a moment are kept
/// apart by the store's fencing, not by this table.
final class PeerHealth: Sendable {
    let selfURL: String?
    let peers: [String]
    let takeoverAfter: Duration
    /// Seeds the rendezvous order (the cluster's location), so two clusters order differently.
    let location: String
    private let started = ContinuousClock.now

    private struct Seen {
        var answered: ContinuousClock.Instant?
        var lastFailed: ContinuousClock.Instant?
        var draining = false
    }
    private let table = NIOLockedValueBox<[String: Seen]>([:])

    init(selfURL: String?, peers: [String], takeoverAfter: Duration, location: String) {
        self.selfURL = selfURL
        self.peers = peers
        self.takeoverAfter = takeoverAfter
        self.location = location
    }

    /// Asks every peer but this node, and any other URL seen as a writer, side by side.
    func checkAll() async {
        let urls = Set(peers + table.withLockedValue { Array($0.keys) }).subtracting([selfURL].compactMap { $0 })
        await withTaskGroup(of: Void.self) { group in
            for url in urls { group.addTask { await self.check(url) } }
        }
    }

    /// Asks `url` once and records the answer.
    func check(_ url: String) async {
        var status: UInt = 0
        do {
            let response = try await PeerHTTP.healthClient.execute(HTTPClientRequest(url: url + "/ready"), timeout: .milliseconds(500))
            _ = try? await response.body.collect(upTo: 1 << 14)
            status = response.status.code
        } catch {}
        let now = ContinuousClock.now
        table.withLockedValue { t in
            var seen = t[url] ?? Seen()
            if status == 200 {
                seen.answered = now
                seen.draining = false
            } else if status == 503 {
                // Answering but not ready: shutting down, its collections go now.
                seen.draining = true
            } else {
                seen.lastFailed = now
            }
            t[url] = seen
        }
    }

    /// Whether `url` is gone: its checks have failed for `takeoverAfter` since it last answered
    /// (since this node started, when it never has), or it said it is shutting down. This node
    /// never is. A URL not asked about before is checked from now on.
    func isGone(_ url: String) -> Bool {
        if url == selfURL { return false }
        let seen = table.withLockedValue { t -> Seen in
            if t[url] == nil { t[url] = Seen() }
            return t[url] ?? Seen()
        }
        if seen.draining { return true }
        guard let failed = seen.lastFailed else { return false }
        return failed - (seen.answered ?? started) >= takeoverAfter
    }

    /// How long until `url` counts as gone if its checks go on failing (zero: gone now).
    func timeUntilGone(_ url: String) -> Duration {
        if isGone(url) { return .zero }
        let answered = table.withLockedValue { $0[url]?.answered } ?? started
        return max(.zero, takeoverAfter - (ContinuousClock.now - answered))
    }

    /// The first peer in `collection`'s rendezvous order that is not gone: its owner (nil when
    /// every peer is gone).
    func owner(of collection: String) -> String? {
        Self.rendezvousOrder(peers, key: location + "\n" + collection).first { !isGone($0) }
    }

    /// `peers` ordered by a hash of `key` and each peer (highest first): the same on every node.
    static func rendezvousOrder(_ peers: [String], key: String) -> [String] {
        func score(_ peer: String) -> UInt64 {
            SHA256.hash(data: Data((key + "\n" + peer).utf8)).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        }
        return peers.map { ($0, score($0)) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.map(\.0)
    }
}
