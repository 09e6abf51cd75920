import Foundation
import Logging
import TidepoolS3

extension Database {
    /// Opens the database at `url`: `s3://bucket/prefix` on object storage (every write is
    /// durable once it is an object; see `ObjectStorageOptions` for the endpoint, credentials and
    /// cache), or a local directory path.
    public convenience init(
        url: String, options: DatabaseOptions = DatabaseOptions(), objectStorage: ObjectStorageOptions = ObjectStorageOptions()
    ) throws {
        guard url.hasPrefix("s3://") else {
            try self.init(path: url, options: options)
            return
        }
        let storage = try ObjectStorage.open(url: url, options: objectStorage, logger: options.logger)
        // Without `createIfMissing`, a store without a manifest is refused by `init(storage:)`.
        try self.init(storage: storage, path: url, options: options)
    }
}

extension Database {
    /// On object storage: what the database has asked of its store and its cache; nil elsewhere.
    public var objectStorageMetrics: ObjectStorageMetrics? { (storage as? ObjectStorage)?.metrics }
}

extension ObjectStorage {
    /// The storage at an `s3://` URL, with its cache.
    static func open(url: String, options: ObjectStorageOptions, logger: Logger) throws -> ObjectStorage {
        let client: S3Client
        let root: S3Location
        do {
            root = try S3Location(parsing: url)
            let endpoint = try S3Endpoint.fromEnvironment(endpoint: options.endpoint, region: options.region, pathStyle: options.pathStyle)
            client = try S3Client(endpoint: endpoint, bucket: root.bucket)
        } catch let e as S3Error {
            throw TidepoolError.invalidArgument(e.description)
        }
        guard options.cacheBytes > 0 else { throw TidepoolError.invalidArgument("the cache needs a positive byte budget") }
        let safe = root.description.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        let dir = options.cacheDirectory ?? (NSTemporaryDirectory() + "/tidepool-cache/" + String(safe))
        let cache = try ObjectFileCache(root: dir, capacity: options.cacheBytes, location: root.description)
        return ObjectStorage(
            store: S3ObjectStore(client: client, root: root), cache: cache, advertisedURL: options.advertisedURL,
            commitPacing: (options.walGather, options.walMinSpacing), garbageGrace: options.garbageGrace, logger: logger)
    }
}

extension Database {
    /// `verify(path:)` for any location `Database(url:)` opens: the problems found, none when sound.
    /// Read-only: nothing in the store changes (a cache directory may fill).
    public static func verify(
        url: String, objectStorage: ObjectStorageOptions = ObjectStorageOptions(), logger: Logger = Logger(label: "tidepool")
    ) -> [String] {
        guard url.hasPrefix("s3://") else { return verify(path: url, logger: logger) }
        do {
            let storage = try ObjectStorage.open(url: url, options: objectStorage, logger: logger)
            if try storage.holdsACluster() { return try ClusterStorage(url: url, options: objectStorage, logger: logger).verify() }
            guard try storage.newestManifestVersion() > 0 else { return ["no database at '\(url)' (no manifest there)"] }
            return verify(storage: storage, path: url, logger: logger)
        } catch {
            return ["\(error)"]
        }
    }
}
