import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import Tidepool

/// Read consistency on a query node over object storage: `"strong"` (the default) answers for
/// every write acknowledged before the request arrived. While the node holds a lease on the
/// writer's head (`HeadSubscriptions`; the writer acknowledges nothing its lease holders have
/// not heard of) it reads at once from the head it knows, catching up first if its state is
/// behind it. Otherwise the node asks the writer what it has acknowledged (one request, shared
/// by the reads of a burst) while the read runs on its own state, and keeps that answer when
/// its state already held the writer's head; otherwise it catches up (from the store only when
/// the writer does not answer) and reads again.
/// `"eventual"` reads the node's state as it is and says how stale it may be. On a local
/// directory or a writer both are the same: the state is always current.
extension API {
    enum Consistency: String {
        case strong, eventual
    }

    /// The request's `consistency` (strong when absent).
    func consistency(_ body: [String: JSONValue]) throws -> Consistency {
        guard let v = body["consistency"] else { return .strong }
        guard case .string(let s) = v, let level = Consistency(rawValue: s) else {
            throw APIError.badRequest("'consistency' must be \"strong\" or \"eventual\"")
        }
        return level
    }

    /// Applies the request's `consistency` before a read that began at `start`; returns what the
    /// answer reports about it.
    func readConsistency(_ body: [String: JSONValue], collection name: String, since start: ContinuousClock.Instant) throws -> [String: Any]
    {
        switch try consistency(body) {
        case .strong:
            var database = try served.database(for: name)
            try database.catchUp(since: start)
            // A writer on object storage answers from its own state only while no one has taken
            // over: vouched for by its lease (`WriterLease`), else by one HEAD of the next
            // manifest version. One woken from a pause after a takeover would otherwise answer
            // without the new writer's writes: a cluster node follows the collection from then
            // on (and reads as a follower), a single database's writer answers 503.
            if database.objectStorageMetrics != nil, !database.followsAWriter,
                database.writerHeadWithoutWaiting(collection: name) == nil, try database.supersededAsWriter()
            {
                guard served.writerWasSuperseded(name) else {
                    throw APIError(
                        .serviceUnavailable, "not_the_writer", "this node cannot vouch that it is still the writer; ask another node")
                }
                database = try served.database(for: name)
                try database.catchUp(since: start)
            }
            return [:]
        case .eventual:
            let database = try served.database(for: name)
            // Stale past the bound: the read answers at once and the catching up goes on
            // beside it; five times past it (a collection not read for a while), it waits.
            if database.followsAWriter, let bound = served.eventualStalenessBound {
                let stale = database.staleness ?? .seconds(86_400)
                if stale > bound * 5 {
                    try database.catchUp()
                } else if stale > bound {
                    database.catchUpInBackground()
                }
            }
            guard let stale = database.staleness else {
                return ["consistency": "eventual", "staleness_ms": NSNull()]
            }
            return ["consistency": "eventual", "staleness_ms": stale.inSeconds * 1000]
        }
    }

    /// Runs the read `work` under the request's consistency and answers it. A strong read on a
    /// query node asks the writer for its head while `work` runs on this node's state as it is:
    /// the answer stands when that state (taken before `work` began) already held the head — the
    /// usual case, so the read costs the longer of the two, not their sum. Otherwise the node
    /// catches up (from the store only if the writer did not answer) and `work` runs again.
    func read(
        _ body: [String: JSONValue], collection name: String, request: Request, context: TidepoolRequestContext,
        since start: ContinuousClock.Instant, _ work: @escaping @Sendable (Deadline) throws -> [String: Any]
    ) async throws -> Response {
        guard let writer = writerToAsk(body, collection: name, context: context) else {
            return try await run(context, write: false, collection: name) { deadline in
                let read = try readConsistency(body, collection: name, since: start)
                return read.merging(try work(deadline)) { a, _ in a }
            }
        }
        let authorization = request.headers[.authorization]
        // Under a lease the node knows the writer's head already: no request at all.
        if let leased = subscriptions.head(writer: writer, collection: name, authorization: authorization, at: start) {
            return try await run(context, write: false, collection: name) { deadline in
                try served.database(for: name).catchUp(since: start, collection: name, to: leased)
                return try work(deadline)
            }
        }
        async let head = peer.head(writer: writer, collection: name, authorization: authorization, since: start)
        let positionSeen = NIOLockedValueBox<WriterHead?>(nil)
        let speculative: Result<[String: Any], any Error>
        do {
            speculative = .success(
                try await execute(context, write: false, collection: name) { deadline in
                    let position = try served.database(for: name).readPosition(collection: name)
                    positionSeen.withLockedValue { $0 = position }
                    return try work(deadline)
                })
        } catch {
            speculative = .failure(error)
        }
        let writerHead = await head
        // An error stands too when the state was current: the read would fail the same way again.
        if let writerHead, let seen = positionSeen.withLockedValue({ $0 }), seen.covers(writerHead) {
            return jsonResponse(try speculative.get())
        }
        return try await run(context, write: false, collection: name) { deadline in
            try served.database(for: name).catchUp(since: start, collection: name, to: writerHead)
            return try work(deadline)
        }
    }

    /// The writer to ask for its head before a strong read of `name` on a query node: only for a
    /// collection this node has and the key may read (the rest is refused by `run`, and must
    /// not cost the writer a request); nil for eventual reads (a bad value is refused by
    /// `readConsistency`) and anywhere else.
    func writerToAsk(_ body: [String: JSONValue], collection name: String, context: TidepoolRequestContext) -> String? {
        guard let database = served.openDatabase(for: name), database.followsAWriter, let writer = database.writerURL,
            (try? consistency(body)) == .strong, context.apiKey?.allows(collection: name) == true, database.hasCollection(name)
        else { return nil }
        return writer
    }
}
