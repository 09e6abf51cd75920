import Foundation
import XCTest

@testable import Tidepool

/// `verify` on object storage checks the history a writer leaves, not only the files: manifest
/// versions whose generation goes back (a writer that committed from a stale manifest), a
/// collection whose flushed sequence number goes back, and a WAL with a missing object are
/// reported; and a location marked as a cluster's never gets a single database made in it.
final class ObjectStorageHistoryTests: XCTestCase {
    func storage(_ store: MemoryObjectStore, _ cache: TempDir) throws -> ObjectStorage {
        ObjectStorage(store: store, cache: try ObjectFileCache(root: cache.path, capacity: 1 << 30, location: store.location))
    }

    /// A database with collection "c": two flushes, then 40 writes left in WAL objects.
    func history() throws -> MemoryObjectStore {
        let store = MemoryObjectStore()
        let cache = TempDir("history-cache")
        defer { withExtendedLifetime(cache) {} }
        let db = try Database(storage: try storage(store, cache), path: store.location, options: DatabaseOptions())
        let c = try db.createCollection("c", dimension: 4, metric: .l2)
        let v = randomVectors(200, 4, seed: 3)
        for start in stride(from: 0, to: 160, by: 40) {
            try c.upsert((start..<(start + 40)).map { Document(id: .uint(UInt64($0)), vector: v[$0]) })
            if start < 80 { try c.flush() }
        }
        try db.close()
        return store
    }

    func verify(_ store: MemoryObjectStore) throws -> [String] {
        let cache = TempDir("verify-cache")
        return withExtendedLifetime(cache) { Database.verify(storage: try! storage(store, cache), path: store.location) }
    }

    func testASoundHistoryVerifies() throws {
        XCTAssertEqual(try verify(try history()), [])
    }

    func testAManifestCommittedFromAnOlderOneIsReported() throws {
        let store = try history()
        let versions = store.keys.filter { $0.hasPrefix("manifest/") }.sorted()
        XCTAssertGreaterThan(versions.count, 2)
        // A stale writer's commit: the next version holds what an older version held.
        let next = ObjectStorage.manifestKey(try XCTUnwrap(ObjectStorage.manifestVersion(fromKey: versions.last!)) + 1)
        store.plant(next, try XCTUnwrap(store.bytes(versions[1])))
        let problems = try verify(store)
        XCTAssertTrue(problems.contains { $0.contains("generation") && $0.contains("does not follow") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("collection 'c' flushed up to") }, "\(problems)")
    }

    func testAMissingWALObjectIsReported() throws {
        let store = try history()
        let wal = store.keys.filter { $0.hasPrefix("collections/c/wal/") }.sorted()
        XCTAssertGreaterThan(wal.count, 2, "the writes after the last flush are in several objects")
        store.remove(wal[wal.count - 2])
        let problems = try verify(store)
        XCTAssertTrue(problems.contains { $0.contains("are missing") }, "\(problems)")
    }

    func testNoDatabaseIsMadeWhereAClusterLives() throws {
        let store = MemoryObjectStore()
        store.plant(ClusterStorage.markerName, Array(#"{"format":"tidepool-cluster","version":1}"#.utf8))
        let cache = TempDir("cluster-marker-cache")
        XCTAssertThrowsError(try Database(storage: try storage(store, cache), path: store.location, options: DatabaseOptions())) { e in
            guard case .invalidArgument(let m) = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("holds a cluster"), m)
        }
        XCTAssertEqual(store.keys, [ClusterStorage.markerName], "nothing was written")
    }
}
