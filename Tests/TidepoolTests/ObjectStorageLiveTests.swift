import Foundation
import XCTest

@testable import Tidepool

/// `Database(url: "s3://…")` against a real S3-compatible store (SeaweedFS, started by `.ci/run`
/// or `scripts/seaweedfs.sh start`): a writer and a fresh node with an empty cache see the same
/// documents and the same answers as a local database given the same writes.
final class ObjectStorageLiveTests: XCTestCase {
    func objectStorage(cache: String) throws -> (url: String, options: ObjectStorageOptions) {
        try liveObjectStorage(cache: cache, prefix: "live", what: "Database(url: s3://…)")
    }

    func testAWriterAndAFreshNodeAnswerAsALocalDatabaseDoes() throws {
        let (cacheA, cacheB, local) = (TempDir("cache-a"), TempDir("cache-b"), TempDir("local"))
        let (url, options) = try objectStorage(cache: cacheA.path)
        let vectors = randomVectors(3000, 16, seed: 9)
        let docs = vectors.enumerated().map {
            Document(id: .uint(UInt64($0.offset)), vector: $0.element, attributes: ["i": .int(Int64($0.offset))])
        }
        let remote = try Database(url: url, objectStorage: options)
        let localDB = try Database(path: local.path)
        for db in [remote, localDB] {
            let c = try db.createCollection("c", dimension: 16, metric: .cosine)
            for start in stride(from: 0, to: 2000, by: 250) { try c.upsert(Array(docs[start..<(start + 250)])) }
            try c.flush()
            try c.upsert(Array(docs[2000..<3000]))
            _ = try c.delete(ids: (0..<100).map { .uint(UInt64($0 * 7)) })
        }
        var fresh = options
        fresh.cacheDirectory = cacheB.path
        let node = try Database(url: url, options: DatabaseOptions(readOnly: true), objectStorage: fresh)
        let (rc, lc, wc) = (try node.collection("c"), try localDB.collection("c"), try remote.collection("c"))
        XCTAssertEqual(rc.count, lc.count)
        XCTAssertEqual(rc.count, 2900)
        for q in vectors.prefix(50) {
            let expected = try lc.search(vector: q, k: 10).map(\.id)
            XCTAssertEqual(try rc.search(vector: q, k: 10).map(\.id), expected, "the fresh node")
            XCTAssertEqual(try wc.search(vector: q, k: 10).map(\.id), expected, "the writer")
        }
        XCTAssertEqual(try rc.get(ids: [.uint(7), .uint(8)]).map(\.id), [.uint(8)])
        try node.close()
        try remote.close()
        try localDB.close()

        // Reopened as a writer from yet another empty cache: recovery replays the WAL objects.
        let cacheC = TempDir("cache-c")
        var again = options
        again.cacheDirectory = cacheC.path
        let reopened = try Database(url: url, objectStorage: again)
        XCTAssertEqual(try reopened.collection("c").count, 2900)
        try reopened.collection("c").upsert([Document(id: .uint(5000), vector: vectors[0])])
        XCTAssertEqual(try reopened.collection("c").count, 2901)
        try reopened.close()
    }

    func testClearErrorsForAMissingBucketAndAMissingDatabase() throws {
        let cache = TempDir("cache")
        let (url, options) = try objectStorage(cache: cache.path)
        let missing = "s3://no-such-bucket-\(UInt32.random(in: 0...UInt32.max))/db"
        let otherCache = TempDir("cache-2")
        var o = options
        o.cacheDirectory = otherCache.path
        XCTAssertThrowsError(try Database(url: missing, objectStorage: o)) { e in
            XCTAssertTrue("\(e)".contains("NoSuchBucket") || "\(e)".contains("no-such-bucket"), "\(e)")
        }
        XCTAssertThrowsError(try Database(url: url, options: DatabaseOptions(createIfMissing: false), objectStorage: options)) { e in
            XCTAssertTrue("\(e)".contains("no database at"), "\(e)")
        }
    }
}
