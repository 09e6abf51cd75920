import Foundation
import XCTest

@testable import Tidepool

/// Segment files a compaction replaced stay in the store for query nodes on older manifest
/// versions: past a restart of the writer, until the grace period has passed and no retained
/// manifest version names them; then they are deleted, and nothing the current version uses is.
final class ObjectStorageGarbageTests: XCTestCase {
    typealias Node = ObjectStorageTests.Node

    func docs(_ ids: Range<Int>) -> [Document] { randomDocuments(ids, seed: 9) }

    func segmentKeys(_ store: MemoryObjectStore) -> Set<String> { Set(store.keys.filter { $0.contains("/segments/") }) }

    func testReplacedSegmentsStayUntilGraceAndRetentionHavePassed() throws {
        let store = MemoryObjectStore()
        // Versions kept only while current: the manifest's own retention is what this tests.
        let first = try Node(store, garbageGrace: .milliseconds(300), retention: .currentOnly)
        var writer = try first.open()
        var c = try writer.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<10))
        try c.flush()
        try c.upsert(docs(10..<20))
        try c.flush()
        let replaced = segmentKeys(store)
        XCTAssertEqual(replaced.count, 2)
        try c.compact()
        XCTAssertTrue(replaced.isSubset(of: segmentKeys(store)), "replaced segments are kept for readers of older versions")
        XCTAssertEqual(segmentKeys(store).count, 3)

        // A new writer keeps them too: the manifest lists them as retired, not as orphans.
        try writer.close()
        let second = try Node(store, garbageGrace: .milliseconds(300), retention: .currentOnly)
        writer = try second.open()
        c = try writer.collection("c")
        Thread.sleep(forTimeInterval: 0.4)
        try c.flush()
        XCTAssertTrue(replaced.isSubset(of: segmentKeys(store)), "past the grace period, retained versions still name them")

        // Once 16 more versions are committed, no retained version names them.
        for i in 0..<16 {
            try c.upsert(docs((20 + i)..<(21 + i)))
            try c.flush()
        }
        try c.flush()  // one more round of background work, which collects
        XCTAssertTrue(replaced.isDisjoint(with: segmentKeys(store)), "replaced segments were never collected: \(segmentKeys(store))")
        XCTAssertEqual(c.count, 36)
        let third = try Node(store)
        let reader = try third.open(readOnly: true)
        XCTAssertEqual(try reader.collection("c").count, 36, "everything the current version names is there")
        try reader.close()
        try writer.close()
    }
}
