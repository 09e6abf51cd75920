import Foundation

/// What the engine asks of an object store: whole objects, ranges, conditional creates and
/// listings, under keys relative to the database's root. `S3ObjectStore` is the real one; tests
/// add an in-memory store with the same atomic semantics and a fault-injecting wrapper.
///
/// Every call blocks its thread (the engine calls it from its own threads, never an event loop)
/// and throws `TidepoolError.storage` naming the URL and the operation when the store fails.
protocol ObjectStore: AnyObject, Sendable {
    /// The root, for messages (`s3://bucket/prefix`).
    var location: String { get }
    /// The full URL of a key, for messages.
    func url(_ key: String) -> String

    /// An object's bytes (or the bytes `range` of it, fewer at its end); nil when it does not exist.
    func get(_ key: String, range: Range<Int>?) throws -> [UInt8]?
    /// An object's size and the commit token it was created with, if any; nil when it does not exist.
    func head(_ key: String) throws -> ObjectHead?
    /// Creates an object of any size only if none of that name exists, tagged with `token`: the
    /// commit point of a WAL object or a manifest version, and how segments are published (two
    /// writers can never replace each other's files). Returns false when one exists. When the store cannot
    /// tell whether the create happened, this resolves it by reading the object's token back (and
    /// creating again when it is absent); it throws only when the store stays unreachable.
    func createIfAbsent(_ key: String, _ bytes: [UInt8], token: String) throws -> Bool
    /// Copies object `source` to `key` inside the store where it can (a server-side copy, no
    /// bytes through this process), replacing any object at `key`. Returns the bytes that passed
    /// through this process (0 for a server-side copy).
    func copy(_ source: String, to key: String) throws -> Int
    /// Deletes an object; a missing one is not an error.
    func delete(_ key: String) throws
    /// The keys under `prefix`, in byte order, with their sizes.
    func list(prefix: String) throws -> [ObjectEntry]
    /// The names directly under a folder (`a/b` for `a/b/c` and `a/b/d/e` under `a`), sorted.
    func names(under folder: String) throws -> [String]
    /// The requests made so far, by kind (empty for stores that do not count).
    var requestStats: [String: ObjectStorageMetrics.Requests] { get }
}

extension ObjectStore {
    var requestStats: [String: ObjectStorageMetrics.Requests] { [:] }

    /// A copy through this process, for stores that cannot copy on their side.
    func copy(_ source: String, to key: String) throws -> Int {
        guard let bytes = try get(source, range: nil) else {
            throw TidepoolError.io(path: url(source), operation: "copy (no such object)", errno: ENOENT)
        }
        try? delete(key)
        guard try createIfAbsent(key, bytes, token: UUID().uuidString) else {
            throw TidepoolError.storage("copying to \(url(key)): another writer created it meanwhile")
        }
        return bytes.count
    }
}

/// What a `HEAD` of an object tells.
struct ObjectHead: Sendable, Equatable {
    var size: Int
    /// The token given to `createIfAbsent`, if the object was created that way.
    var token: String?
}

/// One key of a listing.
struct ObjectEntry: Sendable, Equatable {
    var key: String
    var size: Int
}
