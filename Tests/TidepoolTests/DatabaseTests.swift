import Foundation
import XCTest

@testable import Tidepool

final class DatabaseTests: XCTestCase {
    func testUpsertGetDeleteCountAndReplace() throws {
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("docs", dimension: 4, metric: .l2)
            try c.upsert([
                Document(id: 1, vector: [1, 0, 0, 0], attributes: ["title": .string("one"), "n": .int(1)]),
                Document(
                    id: "two", vector: [0, 1, 0, 0],
                    attributes: ["tags": .stringArray(["a", "b"]), "ok": .bool(true), "x": .float(2.5), "none": .null]),
                Document(id: 3, vector: [0, 0, 1, 0]),
            ])
            XCTAssertEqual(c.count, 3)
            let got = try c.get(ids: ["two", 1, 99])
            XCTAssertEqual(got.map(\.id), ["two", 1])
            XCTAssertEqual(got[0].attributes["tags"], .stringArray(["a", "b"]))
            XCTAssertEqual(got[0].attributes["x"], .float(2.5))
            XCTAssertEqual(got[0].attributes["none"], .null)
            XCTAssertEqual(got[1].vector, [1, 0, 0, 0])

            // Replace id 1: one document, new vector and attributes.
            try c.upsert(Document(id: 1, vector: [0, 0, 0, 1], attributes: ["title": .string("uno")]))
            XCTAssertEqual(c.count, 3)
            XCTAssertEqual(try c.get(ids: [1]).first?.vector, [0, 0, 0, 1])
            XCTAssertEqual(try c.get(ids: [1]).first?.attributes, ["title": .string("uno")])

            XCTAssertEqual(try c.delete(ids: [3, 404]), 1)
            XCTAssertEqual(c.count, 2)
            XCTAssertTrue(try c.get(ids: [3]).isEmpty)
            let hits = try c.search(vector: [0, 0, 1, 0], k: 10, options: SearchOptions(includeAttributes: true, includeVectors: true))
            XCTAssertEqual(Set(hits.map(\.id)), [1, "two"])
            XCTAssertNotNil(hits[0].attributes)
            XCTAssertNotNil(hits[0].vector)
            try db.close()
        }
    }

    func testReopenPersistsEverythingAcrossFlushAndWAL() throws {
        try forEachStorage { store in
            let base = randomVectors(3000, 16, seed: 1)
            do {
                let db = try store.open()
                let c = try db.createCollection(
                    "v", dimension: 16, metric: .cosine,
                    config: CollectionConfig(memtableBytes: 16 * 4 * 1000, minRowsForGraph: 500))
                for start in stride(from: 0, to: 3000, by: 250) {
                    try c.upsert(
                        (start..<(start + 250)).map {
                            Document(id: .uint(UInt64($0)), vector: base[$0], attributes: ["i": .int(Int64($0))])
                        })
                }
                try c.delete(ids: (0..<100).map { .uint(UInt64($0)) })
                try c.upsert(Document(id: 5000, vector: base[0]))
                try db.close()
            }
            let db = try store.open()
            let c = try db.collection("v")
            XCTAssertEqual(c.metric, .cosine)
            XCTAssertEqual(c.dimension, 16)
            XCTAssertEqual(c.count, 2901)
            XCTAssertTrue(try c.get(ids: [5]).isEmpty)
            let d = try XCTUnwrap(try c.get(ids: [2999]).first)
            XCTAssertEqual(d.attributes["i"], .int(2999))
            // Stored normalized for cosine.
            let norm = d.vector.reduce(0) { $0 + $1 * $1 }
            XCTAssertEqual(norm, 1, accuracy: 1e-5)
            let hit = try c.search(vector: base[0], k: 1)
            XCTAssertEqual(hit.first?.id, 5000)
            XCTAssertEqual(hit.first!.distance, 0, accuracy: 1e-5)
            XCTAssertGreaterThan(c.info().segments.count, 0)
            try db.close()
        }
    }

    func testBadInputIsRefusedAndChangesNothing() throws {
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("v", dimension: 3, metric: .cosine)
            try c.upsert(Document(id: 1, vector: [1, 2, 3]))
            let bad: [[Document]] = [
                [Document(id: 2, vector: [1, 2, 3]), Document(id: 3, vector: [1, 2])],  // wrong dimension
                [Document(id: 2, vector: [1, .nan, 3])],  // NaN
                [Document(id: 2, vector: [1, .infinity, 3])],  // infinity
                [Document(id: 2, vector: [0, 0, 0])],  // zero vector under cosine
                [Document(id: "", vector: [1, 1, 1])],  // empty string id
                [Document(id: 2, vector: [1, 1, 1], attributes: ["f": .float(.nan)])],  // non-finite attribute
            ]
            for batch in bad {
                XCTAssertThrowsError(try c.upsert(batch)) { e in
                    XCTAssertTrue(e is TidepoolError, "\(e)")
                    XCTAssertTrue("\(e)".contains("'v'"), "message names the collection: \(e)")
                }
            }
            XCTAssertEqual(c.count, 1)
            XCTAssertThrowsError(try c.search(vector: [1, 2], k: 1))
            XCTAssertThrowsError(try c.search(vector: [0, 0, 0], k: 1)) {
                XCTAssertTrue("\($0)".contains("query vector is a zero vector"), "\($0)")
            }
            XCTAssertThrowsError(try c.search(vector: [1, .nan, 0], k: 1))
            XCTAssertThrowsError(try c.search(vector: [1, 2, 3], k: 0))
            XCTAssertThrowsError(try db.createCollection("v", dimension: 3, metric: .l2)) {
                XCTAssertEqual($0 as? TidepoolError, .collectionExists("v"))
            }
            XCTAssertThrowsError(try db.createCollection("../x", dimension: 3, metric: .l2))
            XCTAssertThrowsError(try db.createCollection("y", dimension: 0, metric: .l2))
            // A huge memtable would reserve terabytes up front: refused, not a crash.
            XCTAssertThrowsError(
                try db.createCollection("z", dimension: 30_000, metric: .l2, config: CollectionConfig(memtableBytes: 17_509_050_862_106)))
            XCTAssertThrowsError(try db.collection("nope")) { XCTAssertEqual($0 as? TidepoolError, .collectionNotFound("nope")) }
            try db.close()
            // Nothing of the refused batches reached the log.
            let db2 = try store.open()
            XCTAssertEqual(try db2.collection("v").count, 1)
            try db2.close()
        }
    }

    /// Dropping a collection whose memtables wait to be indexed and flushed does not build graphs
    /// nobody will read: it stops that work and returns (it used to wait for all of it).
    func testDroppingABusyCollectionAbandonsItsBackgroundWork() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("busy", dimension: 64, metric: .l2, config: CollectionConfig(memtableBytes: 2 << 20))
        let docs = randomDocuments(0..<40_000, dimension: 64, seed: 5)
        for start in stride(from: 0, to: docs.count, by: 2_000) { try c.upsert(Array(docs[start..<(start + 2_000)])) }
        let backlog = c.info().memtableRows - c.info().memtableIndexedRows
        XCTAssertGreaterThan(backlog, 20_000, "the test needs a backlog of graph building")
        let start = ContinuousClock.now
        try db.dropCollection("busy")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5), "the drop waited for \(backlog) rows to be indexed")
        XCTAssertEqual(db.collectionNames, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/collections/busy"))
        try db.close()
        XCTAssertEqual(try Database(path: dir.path).collectionNames, [])
    }

    func testSecondWriterGetsLockError() throws {
        try forEachStorage { store in
            // Object storage has no lock to take: a second writer is fenced at its first commit
            // instead (ObjectStorageTests.testSplitBrainLosesNoAcknowledgedWrite).
            guard store.kind != .object else { return }
            let db = try store.open()
            XCTAssertThrowsError(try store.open()) { e in
                guard case .locked = e as? TidepoolError else { return XCTFail("\(e)") }
            }
            try db.close()
            let again = try store.open()
            try again.close()
        }
    }

    func testDropCollectionRemovesItsFiles() throws {
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("gone", dimension: 2, metric: .l2)
            try c.upsert(Document(id: 1, vector: [1, 1]))
            try c.flush()
            try db.dropCollection("gone")
            XCTAssertFalse(try store.files("collections").contains("gone"))
            XCTAssertEqual(try store.files("collections/gone/segments"), [])
            XCTAssertThrowsError(try c.upsert(Document(id: 2, vector: [1, 1])))
            let again = try db.createCollection("gone", dimension: 3, metric: .l2)
            XCTAssertEqual(again.count, 0)
            try db.close()
        }
    }

    func testDeletedRowsNeverReturnButGraphStaysNavigable() throws {
        try forEachStorage { store in
            let db = try store.open()
            let base = clusteredVectors(4000, 24, clusters: 20, seed: 3)
            let c = try db.createCollection("v", dimension: 24, metric: .l2, config: CollectionConfig(minRowsForGraph: 100))
            try c.upsert(base.enumerated().map { Document(id: .uint(UInt64($0.offset)), vector: $0.element) })
            try c.flush()
            // Delete every other document, in the graph's segment.
            let deleted = Set(stride(from: 0, to: 4000, by: 2).map { UInt64($0) })
            try c.delete(ids: deleted.map { .uint($0) })
            let queries = randomVectors(30, 24, seed: 9)
            for q in queries {
                let hits = try c.search(vector: q, k: 10)
                XCTAssertEqual(hits.count, 10)
                for h in hits { if case .uint(let v) = h.id { XCTAssertFalse(deleted.contains(v)) } }
                let exact = try c.search(vector: q, k: 10, options: SearchOptions(exact: true))
                XCTAssertGreaterThanOrEqual(Set(hits.map(\.id)).intersection(exact.map(\.id)).count, 8)
            }
            // After compaction the deleted rows are gone from disk.
            try c.compact()
            let info = c.info()
            XCTAssertEqual(info.segments.count, 1)
            XCTAssertEqual(info.segments[0].rows, 2000)
            XCTAssertEqual(info.segments[0].deletedRows, 0)
            try db.close()
        }
    }

    func testSearchReturnsKWhileKLiveDocumentsExist() throws {
        try forEachStorage { store in
            let db = try store.open()
            let base = clusteredVectors(3000, 8, clusters: 12, seed: 4)
            let c = try db.createCollection(
                "v", dimension: 8, metric: .l2, config: CollectionConfig(minRowsForGraph: 100, maxSegments: 100))
            try c.upsert(
                base.enumerated().map {
                    Document(id: .uint(UInt64($0.offset)), vector: $0.element, attributes: ["g": .int(Int64($0.offset % 3))])
                })
            try c.flush()
            // Leave 12 documents alive in a 3,000-node graph (tombstones stay until compaction).
            let keep = Set((0..<12).map { UInt64($0 * 250) })
            try c.delete(ids: (0..<3000).compactMap { keep.contains(UInt64($0)) ? nil : .uint(UInt64($0)) })
            for q in randomVectors(10, 8, seed: 6) {
                let hits = try c.search(vector: q, k: 10)
                XCTAssertEqual(hits.count, 10)
                XCTAssertTrue(
                    hits.allSatisfy {
                        if case .uint(let v) = $0.id { return keep.contains(v) }; return false
                    })
                // With a filter on top: live and g == 0 are ids 0, 750, 1500, 2250 (and 3000 - none).
                let filtered = try c.search(vector: q, k: 10, options: SearchOptions(filter: .eq("g", .int(0))))
                XCTAssertEqual(Set(filtered.map(\.id)), Set(keep.filter { $0 % 3 == 0 }.map { DocumentID.uint($0) }))
            }
            try db.close()
        }
    }

    func testHeavyDeletionTriggersBackgroundCompaction() throws {
        try forEachStorage { store in
            let db = try store.open()
            let c = try db.createCollection("v", dimension: 4, metric: .l2, config: CollectionConfig(minRowsForGraph: 100))
            try c.upsert(randomVectors(1000, 4, seed: 2).enumerated().map { Document(id: .uint(UInt64($0.offset)), vector: $0.element) })
            try c.flush()
            try c.delete(ids: (0..<300).map { .uint(UInt64($0)) })
            try c.flush()  // persists the tombstones; 30% dead triggers compaction
            let info = c.info()
            XCTAssertEqual(info.segments.count, 1)
            XCTAssertEqual(info.segments[0].rows, 700)
            XCTAssertEqual(c.count, 700)
            XCTAssertEqual(try c.search(vector: [0, 0, 0, 0], k: 1).count, 1)  // a zero query is valid under l2
            try db.close()
        }
    }

    func testConcurrentWritersAndReaders() throws {
        try forEachStorage { store in
            let db = try store.open(DatabaseOptions(syncPolicy: .always))
            let c = try db.createCollection(
                "v", dimension: 8, metric: .l2,
                config: CollectionConfig(memtableBytes: 8 * 4 * 300, minRowsForGraph: 200, maxSegments: 3))
            let vectors = randomVectors(4000, 8, seed: 5)
            let failures = LockedCounter()
            DispatchQueue.concurrentPerform(iterations: 6) { t in
                do {
                    if t < 4 {
                        for start in stride(from: t * 1000, to: (t + 1) * 1000, by: 20) {
                            try c.upsert((start..<(start + 20)).map { Document(id: .uint(UInt64($0)), vector: vectors[$0]) })
                        }
                    } else {
                        for i in 0..<300 {
                            let hits = try c.search(vector: vectors[i], k: 5)
                            if hits.count > 5 { failures.add() }
                        }
                    }
                } catch {
                    failures.add()
                }
            }
            XCTAssertEqual(failures.value, 0)
            XCTAssertEqual(c.count, 4000)
            for i in stride(from: 0, to: 4000, by: 97) {
                XCTAssertEqual(try c.get(ids: [.uint(UInt64(i))]).first?.vector, vectors[i])
            }
            try db.close()
            XCTAssertEqual(try store.verify(), [])
        }
    }

    func testSyncPoliciesAllPersistAfterCleanClose() throws {
        for policy in [SyncPolicy.always, .batched, .none] {
            try forEachStorage { store in
                let db = try store.open(DatabaseOptions(syncPolicy: policy))
                let c = try db.createCollection("v", dimension: 2, metric: .innerProduct)
                try c.upsert((0..<100).map { Document(id: .uint(UInt64($0)), vector: [Float($0), 1]) })
                try db.close()
                let db2 = try store.open()
                XCTAssertEqual(try db2.collection("v").count, 100, "\(policy)")
                // Inner product: the largest first component wins.
                XCTAssertEqual(try db2.collection("v").search(vector: [1, 0], k: 1).first?.id, 99)
                try db2.close()
            }
        }
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
