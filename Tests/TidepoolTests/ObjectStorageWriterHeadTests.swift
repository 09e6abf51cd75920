import Foundation
import XCTest

@testable import Tidepool

/// Strong reads through the writer's head (`Database.writerHead`, `WriterLease`): a query node
/// that holds the writer's state asks the store nothing; one that is behind catches up; a
/// writer that was replaced stops answering, and its successor holds acknowledgements until the
/// predecessor's answers can no longer miss them.
final class ObjectStorageWriterHeadTests: XCTestCase {
    typealias Node = ObjectStorageTests.Node

    func docs(_ ids: Range<Int>) -> [Document] { randomDocuments(ids, seed: 5) }

    func testAQueryNodeHoldingTheWritersHeadAsksTheStoreNothing() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store, advertisedURL: "http://writer.test:8080"), try Node(store))
        let writer = try w.open()
        let c = try writer.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<10))
        let reader = try r.open(readOnly: true)
        XCTAssertEqual(reader.writerURL, "http://writer.test:8080", "the manifest names the writer")
        XCTAssertTrue(reader.followsAWriter)
        XCTAssertFalse(writer.followsAWriter)
        XCTAssertNil(try reader.writerHead(collection: "c"), "only the writer vouches for its head")

        var head = try XCTUnwrap(try writer.writerHead(collection: "c"))
        XCTAssertEqual(head.walHead, c.info().lastSeq)
        store.resetCounts()
        try reader.catchUp(since: .now, collection: "c", to: head)
        XCTAssertEqual(store.count("HEAD", "GET", "LIST"), 0, "up to date: no store request")

        try c.upsert(docs(10..<20))
        let start = ContinuousClock.now
        head = try XCTUnwrap(try writer.writerHead(collection: "c"))
        try reader.catchUp(since: start, collection: "c", to: head)
        XCTAssertEqual(try reader.collection("c").count, 20, "behind the head: caught up from the store")
        XCTAssertGreaterThan(store.count("GET"), 0)
        try reader.close()
        try writer.close()
    }

    func testAReplacedWriterStopsAnsweringAndItsSuccessorHoldsAcknowledgements() throws {
        let store = MemoryObjectStore()
        let first = try Node(store, advertisedURL: "http://a.test:8080")
        let old = try first.open()
        let c = try old.createCollection("c", dimension: 8, metric: .l2)
        let t = ContinuousClock.now
        try c.upsert(docs(0..<5))
        XCTAssertLessThan(ContinuousClock.now - t, .seconds(1), "a first writer holds nothing")
        XCTAssertNotNil(try old.writerHead(collection: "c"))

        let opened = ContinuousClock.now
        let successor = try Node(store, advertisedURL: "http://b.test:8080").open()
        try successor.collection("c").upsert(docs(5..<6))
        XCTAssertGreaterThanOrEqual(
            ContinuousClock.now - opened, WriterLease.duration, "the successor acknowledged before its predecessor's answers expired")
        // Past its confirmation, the old writer probes, finds the successor's manifest, and stops.
        XCTAssertNil(try old.writerHead(collection: "c"), "a replaced writer still vouches for its head")
        XCTAssertNotNil(try successor.writerHead(collection: "c"))
        XCTAssertEqual(try Node(store).open(readOnly: true).writerURL, "http://b.test:8080")
        try successor.close()
        try? old.close()
    }
}
