/// Whether a collection works fully (`Collection.health`).
public enum CollectionHealth: Sendable, Equatable, CustomStringConvertible {
    case ok
    /// Reads work; something else fails and is being retried, as `reason` says.
    case degraded(String)

    public var description: String {
        switch self {
        case .ok: return "ok"
        case .degraded(let reason): return "degraded: \(reason)"
        }
    }
}
