import NIOConcurrencyHelpers
import Tidepool

/// The database a server serves, which a takeover replaces (a standby opening as the writer, a
/// writer that was superseded reopening as a query node; `WriterTakeover`): routes read it per
/// request. While it is being replaced the old one is closed, so requests get 503 `unavailable`
/// and `/ready` answers 503, and a load balancer sends them elsewhere.
public final class DatabaseHandle: Sendable {
    private let box: NIOLockedValueBox<(database: Database, switching: Bool)>

    public init(_ database: Database) { box = NIOLockedValueBox((database, false)) }

    /// The database served now.
    public var current: Database { box.withLockedValue { $0.database } }

    /// Whether the database is being replaced.
    public var isSwitching: Bool { box.withLockedValue { $0.switching } }

    func beginSwitch() { box.withLockedValue { $0.switching = true } }

    /// Ends a switch, serving `database` from now on (nil: the old one stays, as it was).
    func finishSwitch(to database: Database?) {
        box.withLockedValue {
            if let database { $0.database = database }
            $0.switching = false
        }
    }
}
