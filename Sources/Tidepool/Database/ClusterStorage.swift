import Foundation
import Logging
import TidepoolS3

/// A cluster's storage: one location on object storage holding a database per collection, so
/// that each collection has a writer of its own, fenced on its own, and commits that never wait
/// for another collection's (`serve --peers`).
///
///     s3://bucket/prefix/CLUSTER                      marks the location as a cluster
///     s3://bucket/prefix/c/<name>/manifest/<v>        the collection's own manifest versions
///     s3://bucket/prefix/c/<name>/collections/<name>/ its WAL objects and segments
///
/// Each collection's database is an ordinary `Database` on object storage with exactly one
/// collection, so everything a database does on object storage (fencing by conditional
/// creates, query nodes following the writer, leases on the writer's head) holds per
/// collection. A database whose newest manifest holds no collection is a dropped collection.
/// The databases of a node share one S3 client and one local cache (each keeps its copies
/// under `c/<name>/` in it). This type knows nothing of nodes or HTTP: which node writes which
/// collection is the server's business.
public final class ClusterStorage: @unchecked Sendable {
    /// The location, `s3://bucket/prefix`.
    public let location: String
    private let client: S3Client
    private let root: S3Location
    private let rootStore: S3ObjectStore
    private let cache: ObjectFileCache
    private let objectStorage: ObjectStorageOptions
    private let logger: Logger

    /// The object that marks a location as a cluster (a single database there is refused).
    static let markerName = "CLUSTER"
    /// The folder that holds a database per collection.
    static let collectionsFolder = "c"

    /// Opens the cluster at `url` (`s3://bucket/prefix`), marking the location as a cluster if
    /// nothing is there yet. A location that holds a single database (`Database(url:)`) is refused.
    public init(url: String, options: ObjectStorageOptions, logger: Logger = Logger(label: "tidepool")) throws {
        do {
            root = try S3Location(parsing: url)
            let endpoint = try S3Endpoint.fromEnvironment(endpoint: options.endpoint, region: options.region, pathStyle: options.pathStyle)
            client = try S3Client(endpoint: endpoint, bucket: root.bucket)
        } catch let e as S3Error {
            throw TidepoolError.invalidArgument(e.description)
        }
        guard options.cacheBytes > 0 else { throw TidepoolError.invalidArgument("the cache needs a positive byte budget") }
        location = root.description
        rootStore = S3ObjectStore(client: client, root: root)
        let safe = root.description.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        let dir = options.cacheDirectory ?? (NSTemporaryDirectory() + "/tidepool-cache/" + String(safe))
        cache = try ObjectFileCache(root: dir, capacity: options.cacheBytes, location: root.description)
        objectStorage = options
        self.logger = logger
        if try rootStore.head(Self.markerName) == nil {
            guard try rootStore.list(prefix: "manifest/").isEmpty else {
                throw TidepoolError.invalidArgument(
                    "\(location) holds a single database (Database(url:), `serve --storage` without --peers), not a cluster; "
                        + "a cluster needs a location of its own")
            }
            let marker = Array(#"{"format":"tidepool-cluster","version":1}"#.utf8)
            _ = try rootStore.createIfAbsent(Self.markerName, marker, token: "cluster-marker")
        }
    }

    /// The names of the collections that have a database here, sorted. Dropped collections keep
    /// theirs (a manifest with no collection, which fences a late write of their last writer),
    /// so a name here may open to no collection.
    public func collectionNames() throws -> [String] {
        try rootStore.names(under: Self.collectionsFolder).filter { (try? Database.validateName($0)) != nil }
    }

    /// `Database.verify` of every collection's database (checksums, invariants, the WAL's
    /// sequence and the manifest versions' history), each problem naming its collection.
    /// Read-only: nothing in the store changes.
    public func verify() throws -> [String] {
        try collectionNames().flatMap { name in
            Database.verify(storage: storage(for: name), path: location + "/c/" + name, logger: logger).map {
                "collection '\(name)': \($0)"
            }
        }
    }

    /// Opens collection `name`'s database: as its writer (creating the database when there is
    /// none; the collection itself is created by `Database.createCollection`), or read-only,
    /// following whoever writes it (`TidepoolError.collectionNotFound` when it has no database).
    /// `options.readOnly` is set from `asWriter`.
    public func openDatabase(collection name: String, asWriter: Bool, options: DatabaseOptions) throws -> Database {
        try Database.validateName(name)
        var options = options
        options.readOnly = !asWriter
        options.createIfMissing = asWriter
        return try Database(
            storage: storage(for: name), path: location + "/" + Self.collectionsFolder + "/" + name, options: options,
            whenAbsent: .collectionNotFound(name))
    }

    /// The storage of collection `name`'s database.
    private func storage(for name: String) -> ObjectStorage {
        let folder = Self.collectionsFolder + "/" + name
        return ObjectStorage(
            store: S3ObjectStore(client: client, root: S3Location(bucket: root.bucket, prefix: root.key(folder))), cache: cache,
            cacheScope: folder + "/", advertisedURL: objectStorage.advertisedURL,
            commitPacing: (objectStorage.walGather, objectStorage.walMinSpacing), garbageGrace: objectStorage.garbageGrace, logger: logger)
    }

    /// What the cluster's databases have asked of the store (one client for all) and the cache.
    public var metrics: ObjectStorageMetrics {
        let c = cache.snapshot
        return ObjectStorageMetrics(
            cacheBytes: c.bytes, cacheCapacity: cache.capacity, cacheHits: c.hits, cacheMisses: c.misses, cacheEvictions: c.evictions,
            requests: rootStore.requestStats)
    }
}

extension ObjectStorage {
    /// Whether the location is a cluster's (`ClusterStorage`): a database must not be made there.
    func holdsACluster() throws -> Bool { try store.head(ClusterStorage.markerName) != nil }
}
