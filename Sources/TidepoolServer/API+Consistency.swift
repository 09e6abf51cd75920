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

    /// Applies the request's `consistency` before a read that began at `start`; returns what the
    /// answer reports about it.
    func readConsistency(
        _ body: [String: JSONValue], since start: ContinuousClock.Instant, collection name: String, writerHead: WriterHead?
    ) throws -> [String: Any] {
        var level = Consistency.strong
        if let v = body["consistency"] {
            guard case .string(let s) = v, let l = Consistency(rawValue: s) else {
                throw APIError.badRequest("'consistency' must be \"strong\" or \"eventual\"")
            }
            level = l
        }
        switch level {
        case .strong:
            try database.catchUp(since: start, collection: name, to: writerHead)
            return [:]
        case .eventual:
            guard let stale = database.staleness else { return ["consistency": "eventual", "staleness_ms": NSNull()] }
            let ms = Double(stale.components.seconds) * 1000 + Double(stale.components.attoseconds) / 1e15
            return ["consistency": "eventual", "staleness_ms": ms]
        }
    }

    /// On a query node, before a strong read (awaited on the request's task, not on an engine
    /// thread): the writer's head for `name`, asked with the caller's own credentials; nil for
    /// eventual reads, elsewhere, or when the writer does not answer in time.
    func writerHeadForStrongRead(
        _ body: [String: JSONValue], collection name: String, request: Request, since start: ContinuousClock.Instant
    ) async -> WriterHead? {
        guard database.followsAWriter, let writer = database.writerURL else { return nil }
        if case .string(let s)? = body["consistency"], s != Consistency.strong.rawValue { return nil }
        return await peer.head(writer: writer, collection: name, authorization: request.headers[.authorization], since: start)
    }
}
