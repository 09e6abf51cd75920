import Foundation
import Hummingbird
import Tidepool

/// Read consistency on a query node over object storage: `"strong"` (the default) catches up
/// with the writer before reading, so the answer holds every write acknowledged before the
/// request arrived: the writer says what it has acknowledged (one request to it), and only a
/// node behind that asks the store; without an answer from the writer, one round of store
/// probes, shared by the requests of a burst. `"eventual"` reads
/// the node's state as it is and says how stale it may be. On a local directory or a writer
/// both are the same: the state is always current.
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
    func readConsistency(
        _ body: [String: JSONValue], since start: ContinuousClock.Instant, collection name: String, writerHead: WriterHead?
    ) throws -> [String: Any] {
        switch try consistency(body) {
        case .strong:
            try database.catchUp(since: start, collection: name, to: writerHead)
            return [:]
        case .eventual:
            guard let stale = database.staleness else { return ["consistency": "eventual", "staleness_ms": NSNull()] }
            return ["consistency": "eventual", "staleness_ms": stale.inSeconds * 1000]
        }
    }

    /// On a query node, before a strong read (awaited on the request's task, not on an engine
    /// thread): the writer's head for `name`, asked with the caller's own credentials; nil for
    /// eventual reads, elsewhere, or when the writer does not answer in time.
    func writerHeadForStrongRead(
        _ body: [String: JSONValue], collection name: String, request: Request, context: TidepoolRequestContext,
        since start: ContinuousClock.Instant
    ) async -> WriterHead? {
        // Only for a collection this node has and the key may read (the rest is refused by
        // `run`, and must not cost the writer a request); a bad value is refused by
        // `readConsistency`.
        guard database.followsAWriter, let writer = database.writerURL, (try? consistency(body)) == .strong,
            context.apiKey?.allows(collection: name) == true, (try? database.collection(name)) != nil
        else { return nil }
        return await peer.head(writer: writer, collection: name, authorization: request.headers[.authorization], since: start)
    }
}
