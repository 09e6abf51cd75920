import Foundation
import Tidepool

/// Read consistency on a query node over object storage: `"strong"` (the default) catches up
/// with the writer before reading, so the answer holds every write acknowledged before the
/// request arrived (one round of probes, shared by the requests of a burst); `"eventual"` reads
/// the node's state as it is and says how stale it may be. On a local directory or a writer
/// both are the same: the state is always current.
extension API {
    enum Consistency: String {
        case strong, eventual
    }

    /// Applies the request's `consistency` before a read that began at `start`; returns what the
    /// answer reports about it.
    func readConsistency(_ body: [String: JSONValue], since start: ContinuousClock.Instant) throws -> [String: Any] {
        var level = Consistency.strong
        if let v = body["consistency"] {
            guard case .string(let s) = v, let l = Consistency(rawValue: s) else {
                throw APIError.badRequest("'consistency' must be \"strong\" or \"eventual\"")
            }
            level = l
        }
        switch level {
        case .strong:
            try database.catchUp(since: start)
            return [:]
        case .eventual:
            guard let stale = database.staleness else { return ["consistency": "eventual", "staleness_ms": NSNull()] }
            let ms = Double(stale.components.seconds) * 1000 + Double(stale.components.attoseconds) / 1e15
            return ["consistency": "eventual", "staleness_ms": ms]
        }
    }
}
