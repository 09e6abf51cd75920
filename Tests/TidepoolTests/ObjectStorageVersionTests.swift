import Foundation
import XCTest

@testable import Tidepool

/// Versions, snapshots, restores, branches and backups on object storage: against the
/// in-memory store with the real store's semantics, and backups to and from a real
/// S3-compatible store (SeaweedFS).
final class ObjectStorageVersionTests: XCTestCase {
    typealias Node = ObjectStorageTests.Node

    func docs(_ ids: Range<Int>) -> [Document] { randomDocuments(ids, dimension: 8, seed: 12) }

    func exact(_ c: Collection, asOf: VersionSelector? = nil) throws -> [DocumentID] {
        try c.search(vector: docs(3..<4)[0].vector, k: 30, options: SearchOptions(exact: true, asOf: asOf)).map(\.id)
    }

    func testAQueryNodeReadsKeptVersionsAndTheWriterRestoresAndBranches() throws {
        let store = MemoryObjectStore()
        let writerNode = try Node(store)
        let writer = try writerNode.open()
        let c = try writer.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<300))
        try c.flush()
        let v1 = (c.version, try exact(c))
        try c.delete(ids: (0..<40).map { .uint(UInt64($0)) })
        try c.upsert(docs(300..<400))
        try c.compact()
        try c.createSnapshot("after")
        // A query node with its own cache reads both versions; the replaced segments are kept.
        let readerNode = try Node(store)
        let reader = try readerNode.open(readOnly: true)
        let rc = try reader.collection("c")
        XCTAssertEqual(try exact(rc, asOf: .version(v1.0)), v1.1)
        XCTAssertEqual(try exact(rc), try exact(c))
        XCTAssertEqual(try rc.versions().last?.snapshots, ["after"])
        try reader.close()
        // Restore on the writer; a branch copies the files (object storage cannot link them).
        let restored = try writer.restoreCollection("c", to: .version(v1.0))
        XCTAssertEqual(try exact(try writer.collection("c")), v1.1)
        let report = try writer.createBranch("b", from: "c", at: .version(v1.0))
        XCTAssertGreaterThan(report.bytesCopied, 0)
        XCTAssertEqual(try writer.collection("b").count, 300)
        try writer.close()
        // A new writer sees the restored state, the branch, and the kept versions.
        let againNode = try Node(store)
        let again = try againNode.open()
        XCTAssertEqual(try again.collection("c").version, restored)
        XCTAssertEqual(try exact(try again.collection("c")), v1.1)
        XCTAssertEqual(try again.collection("b").count, 300)
        XCTAssertEqual(try exact(try again.collection("c"), asOf: .version(restored - 1)).count, 30)
        try again.close()
        let verifier = try Node(store)
        XCTAssertEqual(Database.verify(storage: verifier.storage, path: "mem"), [])
    }

    func testABranchOnARealBucketIsCopiedByTheStore() throws {
        let (cacheA, cacheB) = (TempDir("cache-a"), TempDir("cache-b"))
        let (url, options) = try liveObjectStorage(cache: cacheA.path, prefix: "branch", what: "a branch on S3")
        let db = try Database(url: url, objectStorage: options)
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<2000))
        try c.flush()
        let expected = try exact(c)
        let report = try db.createBranch("b", from: "c")
        XCTAssertGreaterThan(report.bytesCopied, 2000 * 8 * 4, "the store holds the rows twice")
        XCTAssertGreaterThan(db.objectStorageMetrics?.requests["CopyObject"]?.count ?? 0, 0, "copied inside the store")
        try db.collection("b").delete(ids: [.uint(3)])
        XCTAssertEqual(try exact(c), expected)
        try db.close()
        var fresh = options
        fresh.cacheDirectory = cacheB.path
        let node = try Database(url: url, options: DatabaseOptions(readOnly: true), objectStorage: fresh)
        XCTAssertEqual(try node.collection("b").count, 1999)
        XCTAssertEqual(try exact(try node.collection("c")), expected)
        try node.close()
    }

    func testABackupGoesToARealBucketAndComesBack() throws {
        let (src, dst, cache) = (TempDir("src"), TempDir("dst"), TempDir("cache"))
        let (url, options) = try liveObjectStorage(cache: cache.path, prefix: "backup", what: "a backup to S3")
        let db = try Database(path: src.path)
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<500))
        try c.flush()
        try c.upsert(docs(500..<520))  // only in the log
        let expected = try exact(c)
        let report = try Backup.create(source: src.path, collection: "c", destination: url, objectStorage: options)
        XCTAssertGreaterThan(report.bytes, 500 * 8 * 4)
        try db.close()
        XCTAssertEqual(report.bytesCopiedInStore, 0, "from a directory every byte is sent")
        let target = try Database(path: dst.path)
        try target.restoreBackup(from: url, as: "copy", objectStorage: options)
        XCTAssertEqual(try target.collection("copy").count, 520)
        XCTAssertEqual(try exact(try target.collection("copy")), expected)
        try target.close()

        // From a database in the bucket to another prefix of it, and back into another
        // database there: the store copies every file itself.
        let remoteURL = url + "-db"
        let remote = try Database(url: remoteURL, objectStorage: options)
        let rc = try remote.createCollection("c", dimension: 8, metric: .l2)
        try rc.upsert(docs(0..<500))
        try rc.flush()
        try rc.upsert(docs(500..<520))
        try remote.close()
        let inBucket = try Backup.create(source: remoteURL, collection: "c", destination: url + "-b2", objectStorage: options)
        XCTAssertEqual(inBucket.bytesCopiedInStore, inBucket.bytes)
        let cacheC = TempDir("cache-c")
        var secondOptions = options
        secondOptions.cacheDirectory = cacheC.path
        let second = try Database(url: url + "-db2", objectStorage: secondOptions)
        let back = try second.restoreBackup(from: url + "-b2", as: "again", objectStorage: secondOptions)
        XCTAssertEqual(back.bytesCopiedInStore, back.bytes)
        XCTAssertEqual(try second.collection("again").count, 520)
        XCTAssertEqual(try exact(try second.collection("again")), expected)
        try second.close()
    }
}
