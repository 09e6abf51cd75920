import Tidepool

/// What a server serves: the database that holds each collection. One database for every
/// collection (`SingleDatabase`: a local directory, or one database on object storage with its
/// writer and query nodes), or in a cluster a database per collection that this node writes or
/// follows (`ClusterNode`). Routes ask per request, by collection name.
public protocol ServedCollections: Sendable {
    /// The database holding collection `name`, opened now if this node has not used it yet (a
    /// cluster node); `TidepoolError.collectionNotFound` when no such collection exists. Blocks:
    /// call it on the engine threads.
    func database(for name: String) throws -> Database
    /// The database holding `name` if this node has it open, else nil. Never blocks or asks the
    /// store: the event loop may call it.
    func openDatabase(for name: String) -> Database?
    /// Whether collection `name` is known here without asking the store (it exists in an open database).
    func hasCollection(_ name: String) -> Bool
    /// Every collection's name, sorted (a cluster node asks the store). Blocks.
    func collectionNames() throws -> [String]
    /// Creates a collection (in a cluster, this node becomes its writer). Blocks.
    func createCollection(_ name: String, dimension: Int, metric: Metric, config: CollectionConfig) throws -> Collection
    /// Drops a collection. Blocks.
    func dropCollection(_ name: String) throws
    /// Creates collection `name` as a branch of `source` (`Database.createBranch`). Blocks.
    func createBranch(_ name: String, from source: String, at version: VersionSelector?) throws -> BranchReport
    /// The databases open now, for health and metrics (never opens one).
    var openDatabases: [Database] { get }
    /// The collections open now, by name, for health and metrics.
    var openCollectionCount: Int { get }
    /// On object storage: the store's request counts and the cache's counters.
    var objectStorageMetrics: ObjectStorageMetrics? { get }
    /// Called when this node found that another node took over collection `name` it wrote:
    /// returns true when it now follows the collection instead (a cluster node), false when it
    /// cannot (one database: it answers 503 until it is restarted as a query node). Blocks.
    func writerWasSuperseded(_ name: String) -> Bool
    /// The most an eventual read may lag before it catches up first (nil: its database follows
    /// its writer in the background anyway).
    var eventualStalenessBound: Duration? { get }
    /// Closes every database. Blocks.
    func close() throws
}

/// One database serving every collection.
public final class SingleDatabase: ServedCollections {
    public let database: Database

    public init(_ database: Database) { self.database = database }

    public func database(for name: String) throws -> Database { database }
    public func openDatabase(for name: String) -> Database? { database }
    public func hasCollection(_ name: String) -> Bool { database.hasCollection(name) }
    public func collectionNames() throws -> [String] { database.collectionNames }
    public func createCollection(_ name: String, dimension: Int, metric: Metric, config: CollectionConfig) throws -> Collection {
        try database.createCollection(name, dimension: dimension, metric: metric, config: config)
    }
    public func dropCollection(_ name: String) throws { try database.dropCollection(name) }
    public func createBranch(_ name: String, from source: String, at version: VersionSelector?) throws -> BranchReport {
        try database.createBranch(name, from: source, at: version)
    }
    public var openDatabases: [Database] { [database] }
    public var openCollectionCount: Int { database.collectionNames.count }
    public var objectStorageMetrics: ObjectStorageMetrics? { database.objectStorageMetrics }
    public func writerWasSuperseded(_ name: String) -> Bool { false }
    public var eventualStalenessBound: Duration? { nil }
    public func close() throws { try database.close() }
}
