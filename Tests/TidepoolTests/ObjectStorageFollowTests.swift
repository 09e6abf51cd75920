import Foundation
import XCTest

@testable import Tidepool

/// A read-only node on object storage following its writer (`Database.catchUp`): WAL objects,
/// flushes, compactions, deletions, collections created and dropped; strong reads see every
/// write acknowledged before they began; an idle catch-up lists and writes nothing.
final class ObjectStorageFollowTests: XCTestCase {
    typealias Node = ObjectStorageTests.Node

    func docs(_ ids: Range<Int>) -> [Document] { randomDocuments(ids, seed: 3) }

    func ids(_ r: Range<Int>) -> [DocumentID] { r.map { .uint(UInt64($0)) } }

    /// A writer on node `w` whose collection "c" holds documents 0..<10, and a reader on node
    /// `r` that sees them (the nodes own the caches: keep them alive).
    func writerAndReader(_ w: Node, _ r: Node) throws -> (writer: Database, c: Collection, reader: Database) {
        let writer = try w.open()
        let c = try writer.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<10))
        let reader = try r.open(readOnly: true)
        XCTAssertEqual(try reader.collection("c").count, 10)
        return (writer, c, reader)
    }

    func testAReaderFollowsLogsFlushesCompactionsAndDrops() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let (writer, c, reader) = try writerAndReader(w, r)

        try c.upsert(docs(10..<20))
        _ = try c.delete(ids: ids(0..<3))
        try reader.catchUp()
        XCTAssertEqual(try reader.collection("c").count, 17, "WAL objects applied")
        XCTAssertEqual(try reader.collection("c").get(ids: ids(0..<20)).count, 17)

        try c.flush()
        try c.upsert(docs(20..<30))
        try reader.catchUp()
        XCTAssertEqual(try reader.collection("c").count, 27, "a flush (new manifest, WAL objects deleted) and later writes")
        try c.upsert(docs(30..<40))
        try c.compact()
        try reader.catchUp()
        let rc = try reader.collection("c")
        XCTAssertEqual(rc.count, 37, "after a compaction")
        XCTAssertEqual(rc.info().segments.count, c.info().segments.count)
        let q = docs(0..<40)[33].vector
        XCTAssertEqual(
            try rc.search(vector: q, k: 5, options: SearchOptions(exact: true)).map(\.id),
            try c.search(vector: q, k: 5, options: SearchOptions(exact: true)).map(\.id))

        try writer.createCollection("d", dimension: 8, metric: .cosine).upsert(docs(0..<5))
        try reader.catchUp()
        XCTAssertEqual(try reader.collection("d").count, 5, "a collection created by the writer")
        try writer.dropCollection("d")
        try reader.catchUp()
        XCTAssertThrowsError(try reader.collection("d")) { XCTAssertEqual($0 as? TidepoolError, .collectionNotFound("d")) }
        XCTAssertThrowsError(try reader.collection("c").upsert(docs(0..<1)), "a follower writes nothing")
        try reader.close()
        try writer.close()
    }

    /// A query node is open once it has read the manifest; each collection opens on its first
    /// use (once, however many callers ask at the same time), from the manifest entry current
    /// then, and one opened already follows its writer's flushes and compactions.
    func testAQueryNodeOpensEachCollectionOnFirstUse() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let writer = try w.open()
        let a = try writer.createCollection("a", dimension: 8, metric: .l2)
        let b = try writer.createCollection("b", dimension: 8, metric: .l2)
        try a.upsert(docs(0..<10))
        try b.upsert(docs(0..<20))
        try a.flush()
        store.resetCounts()
        let reader = try r.open(readOnly: true)
        XCTAssertEqual(reader.collectionNames, ["a", "b"])
        XCTAssertTrue(reader.openCollections.isEmpty, "nothing opened at start")
        XCTAssertTrue(reader.hasCollection("a"))
        XCTAssertFalse(reader.hasCollection("c"))
        XCTAssertLessThanOrEqual(store.count("LIST"), 1, "only the manifest versions are listed")
        XCTAssertThrowsError(try reader.collection("c")) { XCTAssertEqual($0 as? TidepoolError, .collectionNotFound("c")) }

        // Changed before its first use: it opens from the newer entry.
        try a.upsert(docs(10..<15))
        try a.flush()
        try a.upsert(docs(15..<18))
        try reader.catchUp()
        XCTAssertTrue(reader.openCollections.isEmpty, "catching up opens nothing")
        let opened = Locked<[ObjectIdentifier]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            if let c = try? reader.collection("a") { opened.withLock { $0.append(ObjectIdentifier(c)) } }
        }
        XCTAssertEqual(opened.withLock { $0.count }, 4)
        XCTAssertEqual(Set(opened.withLock { $0 }).count, 1, "one opening shared by its callers")
        XCTAssertEqual(try reader.collection("a").count, 18)
        XCTAssertEqual(Set(reader.openCollections.keys), ["a"])

        // Opened already: it follows a compaction and later writes; the unopened one stays closed.
        try a.upsert(docs(18..<25))
        try a.compact()
        try b.upsert(docs(20..<30))
        try reader.catchUp()
        XCTAssertEqual(try reader.collection("a").count, 25)
        XCTAssertEqual(Set(reader.openCollections.keys), ["a"])
        XCTAssertEqual(try reader.collection("b").count, 30, "opened now, with the writes so far")
        try reader.close()
        try writer.close()
    }

    func testAnIdleCatchUpListsAndWritesNothing() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let writer = try w.open()
        try writer.createCollection("c", dimension: 8, metric: .l2).upsert(docs(0..<10))
        let reader = try r.open(readOnly: true)
        store.resetCounts()
        for _ in 0..<5 { try reader.catchUp() }
        XCTAssertEqual(store.count("LIST", "PUT if absent", "PUT", "DELETE"), 0)
        XCTAssertGreaterThan(store.count("HEAD", "GET"), 0, "probes")
        XCTAssertLessThanOrEqual(try XCTUnwrap(reader.staleness), .seconds(5))
        try reader.close()
        try writer.close()
    }

    /// While a writer upserts (flushing small memtables as it goes), every strong read sees every
    /// write acknowledged before it began.
    func testStrongReadsSeeEveryWriteAcknowledgedBeforeThey() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let writer = try w.open()
        let c = try writer.createCollection("c", dimension: 8, metric: .l2, config: CollectionConfig(memtableBytes: 8 << 10))
        try c.upsert(docs(0..<1))
        let reader = try r.open(readOnly: true)
        let acked = LockedBox(0)
        let pool = docs(0..<600)
        let done = DispatchSemaphore(value: 0)
        // The writer waits for a finished check every 50 writes, so the reads interleave with the
        // writes however the two threads are scheduled (a loaded CI machine let the writer finish
        // all 600 while the reader made two checks).
        let checked = DispatchSemaphore(value: 0)
        Thread {
            for i in 1..<600 {
                try? c.upsert([pool[i]])
                acked.set(i)
                if i % 50 == 0 { checked.wait() }
            }
            done.signal()
        }.start()
        var checks = 0
        while acked.get() < 599 {
            let before = acked.get()
            let start = ContinuousClock.now
            try reader.catchUp(since: start)
            let got = try reader.collection("c").get(ids: ids(0..<(before + 1)))
            XCTAssertEqual(got.count, before + 1, "a strong read missed writes acknowledged before it")
            checks += 1
            checked.signal()
        }
        done.wait()
        try reader.catchUp()
        XCTAssertEqual(try reader.collection("c").count, 600)
        XCTAssertGreaterThan(c.info().segments.count, 0, "the writer flushed while the reader followed")
        XCTAssertGreaterThanOrEqual(checks, 11, "at least one check per 50 writes")
        try reader.close()
        try writer.close()
    }

    /// `catchUpInBackground` returns at once and brings the reader up to date on a thread of its
    /// own; calls made while one runs start no other (the store sees one round of probes).
    func testACatchUpInTheBackgroundRunsOnceAtATime() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let (writer, c, reader) = try writerAndReader(w, r)
        try c.upsert(docs(10..<20))
        store.resetCounts()
        for _ in 0..<50 { reader.catchUpInBackground() }
        let until = Date(timeIntervalSinceNow: 10)
        while try reader.collection("c").count < 20 && Date() < until { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(try reader.collection("c").count, 20, "the writes arrived")
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertLessThanOrEqual(store.count("HEAD", "GET"), 8, "one round of probes, not fifty")
        try reader.close()
        try writer.close()
    }
}
