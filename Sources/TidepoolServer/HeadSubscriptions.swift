import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Tidepool

/// On a query node: leases on writers' heads (`HeadLeases` is the writer's side), so a strong
/// read asks nobody while its lease holds. The first strong read of a collection (per caller's
/// `Authorization`, which the polls carry) starts a subscription: a loop that long-polls the
/// writer's head, updating what this node knows and until when it may rely on it (counted from
/// when each poll was sent). A subscription no strong read has used for `idleAfter` stops.
final class HeadSubscriptions: Sendable {
    /// A subscription unused this long stops polling.
    static let idleAfter: Duration = .seconds(10)

    private struct Subscription {
        let id: String
        var known: WriterHead?
        var validUntil: ContinuousClock.Instant?
        var lastUsed: ContinuousClock.Instant
    }
    private let subscriptions = NIOLockedValueBox<[String: Subscription]>([:])

    /// The head `writer` vouched for under a lease that holds at `start` (so it includes every
    /// write acknowledged before `start`), or nil: then the caller asks the writer itself.
    /// Starts a subscription when there is none.
    func head(writer: String, collection: String, authorization: String?, at start: ContinuousClock.Instant) -> WriterHead? {
        let key = writer + " " + collection + " " + (authorization ?? "")
        let (head, startPolling): (WriterHead?, Bool) = subscriptions.withLockedValue { s in
            let now = ContinuousClock.now
            guard var sub = s[key] else {
                s[key] = Subscription(id: String(UInt64.random(in: 1...UInt64.max), radix: 16), lastUsed: now)
                return (nil, true)
            }
            sub.lastUsed = now
            s[key] = sub
            guard let until = sub.validUntil, until > start, let known = sub.known else { return (nil, false) }
            return (known, false)
        }
        if startPolling {
            Task.detached { await self.poll(key: key, writer: writer, collection: collection, authorization: authorization) }
        }
        return head
    }

    /// The loop of one subscription: each poll tells the writer what this node knows and is
    /// answered when the head moves past it (or within `HeadLeases.maxHold`).
    private func poll(key: String, writer: String, collection: String, authorization: String?) async {
        var pause: Duration = .milliseconds(50)
        while true {
            guard
                let (id, known) = subscriptions.withLockedValue({ s -> (String, WriterHead?)? in
                    guard let sub = s[key] else { return nil }
                    guard ContinuousClock.now - sub.lastUsed < Self.idleAfter else {
                        s[key] = nil
                        return nil
                    }
                    return (sub.id, sub.known)
                })
            else { return }
            let sent = ContinuousClock.now
            let answer = await fetch(writer: writer, collection: collection, authorization: authorization, subscription: id, known: known)
            subscriptions.withLockedValue { s in
                guard var sub = s[key] else { return }
                if let (head, lease) = answer {
                    sub.known = head
                    sub.validUntil = sent + lease
                } else {
                    sub.validUntil = nil
                }
                s[key] = sub
            }
            if answer == nil {
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            } else {
                pause = .milliseconds(50)
            }
        }
    }

    private func fetch(
        writer: String, collection: String, authorization: String?, subscription: String, known: WriterHead?
    ) async -> (WriterHead, Duration)? {
        let k = known ?? WriterHead(manifestVersion: 0, walHead: 0)
        let url =
            writer + "/v1/collections/" + WriterPeer.pathSegment(collection) + "/head?subscription=" + subscription
            + "&after_manifest=\(k.manifestVersion)&after_wal=\(k.walHead)&wait_ms=\(HeadLeases.maxHold.milliseconds)"
        var request = HTTPClientRequest(url: url)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        do {
            let response = try await PeerHTTP.client.execute(request, timeout: .seconds(2))
            let body = try await response.body.collect(upTo: 1 << 16)
            guard response.status == .ok,
                let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                let version = (object["manifest_version"] as? NSNumber)?.uint64Value,
                let head = (object["wal_head"] as? NSNumber)?.uint64Value,
                let lease = (object["lease_ms"] as? NSNumber)?.int64Value, lease > 0
            else { return nil }
            return (WriterHead(manifestVersion: version, walHead: head), .milliseconds(lease))
        } catch {
            return nil
        }
    }
}

extension Duration {
    /// Whole milliseconds (rounded down).
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
