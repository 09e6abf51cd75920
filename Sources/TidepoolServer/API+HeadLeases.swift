import Foundation
import Hummingbird
import Tidepool

/// Leases on heads (`HeadLeases`, `HeadSubscriptions`): the writer's poll route and the rule
/// that a write is acknowledged only once every lease holder knows it.
extension API {
    /// Runs a write of `collection` and answers only once every query node holding a lease on
    /// the collection's head has confirmed the head that includes it (`HeadLeases.publish`).
    func write(
        _ context: TidepoolRequestContext, collection name: String, _ body: @escaping @Sendable (Deadline) throws -> [String: Any]
    ) async throws -> Response {
        let response = try await run(context, write: true, collection: name, body)
        await leases.publish(collection: name, head: served.openDatabase(for: name)?.acknowledgedHead(collection: name))
        return response
    }

    /// `GET …/head?subscription=ID&after_manifest=V&after_wal=S&wait_ms=N`: a query node's poll
    /// (see `HeadLeases.poll`). Answers the head with `lease_ms` once it is past what the node
    /// knows or after `wait_ms` (at most 250); 409 `not_the_writer` when this node cannot vouch
    /// for the head now. Needs read access to the collection, as the plain head does.
    func pollHead(_ request: Request, context: TidepoolRequestContext, collection name: String, subscription: String) async throws
        -> Response
    {
        guard let key = context.apiKey else { throw APIError(.unauthorized, "unauthorized", "no API key") }
        guard key.allows(collection: name) else {
            throw APIError(.forbidden, "forbidden", "this API key has no access to collection '\(name)'")
        }
        let q = request.uri.queryParameters
        guard subscription.utf8.count <= 64, !subscription.isEmpty,
            let manifest = UInt64(q.get("after_manifest") ?? "0"), let wal = UInt64(q.get("after_wal") ?? "0"),
            let waitMs = Int(q.get("wait_ms") ?? "0"), waitMs >= 0
        else {
            throw APIError.badRequest(
                "a head subscription takes subscription (1-64 characters), after_manifest, after_wal and wait_ms (non-negative integers)")
        }
        // An unknown collection is 404, as everywhere; one not open here opens on the engine threads.
        let db: Database
        if let open = served.openDatabase(for: name) {
            db = open
        } else {
            db = try await executor.run(key: key.secret, write: false, timeout: timeout) { try served.database(for: name) }
        }
        _ = try db.collection(name)
        let answer = await leases.poll(
            collection: name, subscription: subscription, known: WriterHead(manifestVersion: manifest, walHead: wal),
            hold: .milliseconds(min(waitMs, 1000))
        ) { db.writerHeadLease(collection: name) }
        guard let (head, lease) = answer else {
            throw APIError(.conflict, "not_the_writer", "this node cannot vouch for the head of '\(name)' now (it is not its writer now)")
        }
        return jsonResponse(["manifest_version": head.manifestVersion, "wal_head": head.walHead, "lease_ms": lease.milliseconds])
    }
}
