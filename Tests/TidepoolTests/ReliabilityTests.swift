import Foundation
import XCTest

@testable import Tidepool

/// Hostile values and failing disks: vectors whose distances would overflow are refused at the
/// door; background work that fails degrades the collection (reads and, while there is room,
/// writes go on) and recovers by itself; a failed log write is cut and writes resume; one damaged
/// collection leaves the others working; a memtable's budget is never allocated up front.
final class ReliabilityTests: XCTestCase {
    func testVectorsWhoseDistancesWouldOverflowAreRefusedAndBigOnesIndexFine() throws {
        try forEachStorage { store in
            let db = try store.open()
            for metric in [Metric.l2, .innerProduct] {
                let c = try db.createCollection(
                    "m\(metric.rawValue)", dimension: 4, metric: metric, config: CollectionConfig(minRowsForGraph: 100))
                for bad in [[3e38, 0, 0, 0], [1e19, 1e19, 1e19, 1e19]] as [[Float]] {
                    XCTAssertThrowsError(try c.upsert(Document(id: 1, vector: bad))) { e in
                        XCTAssertTrue("\(e)".contains("squared norm") && "\(e)".contains("overflow"), "\(e)")
                    }
                    XCTAssertThrowsError(try c.search(vector: bad, k: 1))
                }
                // Large but accepted values: k-means, graphs and rankings stay finite.
                let big = randomVectors(600, 4, seed: 7).map { $0.map { $0 * 1e17 } }
                try c.upsert(big.enumerated().map { Document(id: .uint(UInt64($0.offset)), vector: $0.element) })
                try c.flush()
                try c.updateIndexSettings {
                    $0.index = .ivf; $0.quantization = .pq; $0.ivf.pqSubspaces = 2
                }
                try c.compact()
                let hits = try c.search(vector: big[5], k: 3)
                XCTAssertEqual(hits.count, 3)
                XCTAssertTrue(hits.allSatisfy { $0.distance.isFinite }, "\(hits)")
                if metric == .l2 { XCTAssertEqual(hits.first?.id, 5) }
                XCTAssertEqual(c.health, .ok)
            }
            // Under cosine any finite non-zero vector is fine: it is normalized.
            let cos = try db.createCollection("cos", dimension: 2, metric: .cosine)
            try cos.upsert(Document(id: 1, vector: [3e38, 3e38]))
            XCTAssertEqual(try cos.get(ids: [1]).first?.vector[0] ?? 0, Float(0.5).squareRoot(), accuracy: 1e-6)
            try db.close()
        }
    }

    func testKMeansNeverTrapsOnNonFiniteInput() {
        var x = randomVectors(300, 3, seed: 2).flatMap { $0 }
        x[7] = .infinity
        x[20] = .nan
        let r = x.withUnsafeBufferPointer {
            KMeans(k: 8, iterations: 3, seed: 1, threads: 2).train($0.baseAddress!, count: 100, dimension: 3)
        }
        XCTAssertEqual(r.centroids.count, 24)
    }

    /// A flush whose segment writes keep failing: the collection says it is degraded, serves
    /// reads, takes writes while memtables have room, and recovers by itself once the disk works.
    func testFailingBackgroundWorkDegradesThenRecovers() throws {
        let faulty = FaultInjectingStorage(MemoryStorage())
        let db = try Database(storage: faulty, path: faulty.location, options: DatabaseOptions(syncPolicy: .none))
        let c = try db.createCollection("v", dimension: 4, metric: .l2, config: CollectionConfig(minRowsForGraph: 100))
        try c.upsert(randomVectors(300, 4, seed: 1).enumerated().map { Document(id: .uint(UInt64($0.offset)), vector: $0.element) })
        faulty.inject(.init(operation: .rename, nth: 1, errno: ENOSPC, sticky: true))
        XCTAssertThrowsError(try c.flush())
        guard case .degraded(let reason) = c.health else { return XCTFail("\(c.health)") }
        XCTAssertTrue(reason.contains("No space left"), reason)
        XCTAssertEqual(try c.search(vector: [0, 0, 0, 0], k: 3).count, 3, "reads go on")
        try c.upsert(Document(id: 1000, vector: [1, 1, 1, 1]))  // writes go on while there is room
        XCTAssertEqual(c.count, 301)
        faulty.heal()
        // The retry (0.5 s doubling) or the next flush succeeds.
        try c.flush()
        XCTAssertEqual(c.health, .ok)
        XCTAssertEqual(c.info().segments.map(\.rows), [300, 1], "both memtables flushed")
        try db.close()
        let again = try Database(storage: faulty, path: faulty.location, options: DatabaseOptions())
        XCTAssertEqual(try again.collection("v").count, 301)
        try again.close()
    }

    /// A log write that fails with a full disk is refused, its partial frame cut; the next write
    /// works without a reopen; after a crash exactly the acknowledged writes are there.
    func testAFailedLogWriteIsCutAndWritesResumeWithoutAReopen() throws {
        let memory = MemoryStorage()
        let faulty = FaultInjectingStorage(memory)
        let db = try Database(storage: faulty, path: faulty.location, options: DatabaseOptions(syncPolicy: .always))
        let c = try db.createCollection("v", dimension: 2, metric: .l2)
        try c.upsert(Document(id: 1, vector: [1, 1]))
        faulty.inject(.init(operation: .write, nth: 1, errno: ENOSPC, short: true))
        XCTAssertThrowsError(try c.upsert(Document(id: 2, vector: [2, 2])))
        XCTAssertEqual(
            c.health,
            .degraded(
                "WAL write failed (write (injected) failed on '\(faulty.displayPath("collections/v/wal/00000000000000000001.wal"))': No space left on device (errno 28)); the next write retries"
            ))
        // A sync failure refuses the write too, and is recovered from the same way.
        faulty.inject(.init(operation: .sync, nth: 2, errno: EIO))
        XCTAssertThrowsError(try c.upsert(Document(id: 3, vector: [3, 3])))
        faulty.heal()
        try c.upsert(Document(id: 4, vector: [4, 4]))
        XCTAssertEqual(c.health, .ok)
        XCTAssertEqual(Set(try c.get(ids: [1, 2, 3, 4]).map(\.id)), [1, 4])
        memory.simulatePowerLoss()
        _ = db
        let again = try Database(storage: memory, path: memory.location, options: DatabaseOptions())
        let v = try again.collection("v")
        XCTAssertEqual(Set(try v.get(ids: [1, 2, 3, 4]).map(\.id)), [1, 4], "refused writes never come back")
        try v.upsert(Document(id: 5, vector: [5, 5]))
        try again.close()
    }

    /// One damaged segment makes only its collection unavailable, with the file and offset.
    func testADamagedCollectionLeavesTheOthersWorking() throws {
        let dir = TempDir()
        do {
            let db = try Database(path: dir.path)
            for name in ["a", "b"] {
                let c = try db.createCollection(name, dimension: 4, metric: .l2)
                try c.upsert((0..<50).map { Document(id: .uint(UInt64($0)), vector: [Float($0), 1, 2, 3]) })
                try c.flush()
            }
            try db.close()
        }
        let file = try flipSegmentByte(dir.path, collection: "a") { _ in 300 }
        let db = try Database(path: dir.path)
        XCTAssertEqual(db.collectionNames, ["a", "b"])
        XCTAssertEqual(try db.collection("b").count, 50)
        XCTAssertThrowsError(try db.collection("a")) { e in
            guard case .corrupt(let f, let offset, _) = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(f.hasSuffix(file), f)
            XCTAssertGreaterThan(offset, 0)
        }
        XCTAssertEqual(Array(db.unavailableCollections.keys), ["a"])
        XCTAssertThrowsError(try db.createCollection("a", dimension: 4, metric: .l2))
        try db.close()
        let problems = Database.verify(path: dir.path)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].contains(file), "\(problems)")
        // Dropping it is the operator's call, and works.
        let again = try Database(path: dir.path)
        try again.dropCollection("a")
        XCTAssertEqual(again.collectionNames, ["b"])
        try again.close()
    }

    /// A torn header on an empty last log file (a crash between creating it and writing it)
    /// holds nothing: the collection opens, and keeps every write.
    func testATornHeaderOnAnEmptyLastLogFileIsHarmless() throws {
        let dir = TempDir()
        do {
            let db = try Database(path: dir.path)
            try db.createCollection("c", dimension: 2, metric: .l2).upsert(Document(id: 1, vector: [1, 2]))
            try db.close()
        }
        let wal = dir.path + "/collections/c/wal/" + WALFormat.fileName(firstSeq: 2)
        var header = WALFileHeader(dimension: 2, firstSeq: 2).encoded()
        header[30] ^= 0xFF
        FileManager.default.createFile(atPath: wal, contents: Data(header))
        XCTAssertEqual(Database.verify(path: dir.path), [])
        let db = try Database(path: dir.path)
        XCTAssertEqual(try db.collection("c").count, 1)
        try db.close()
    }

    /// A tiny dimension with a large memtable budget reserves rows lazily: creating it and
    /// writing to it commits little memory, and it reopens.
    func testAHugeMemtableBudgetIsNotAllocatedUpFront() throws {
        try forEachStorage { store in
            releaseFreeHeapMemory()
            let before = currentResidentBytes()
            let db = try store.open()
            let c = try db.createCollection("tiny", dimension: 1, metric: .l2, config: CollectionConfig(memtableBytes: 1 << 30))
            try c.upsert((0..<1000).map { Document(id: .uint(UInt64($0)), vector: [Float($0)]) })
            XCTAssertLessThan(currentResidentBytes() - before, 200 << 20, "resident growth")
            try db.close()
            let again = try store.open()
            XCTAssertEqual(try again.collection("tiny").count, 1000)
            try again.close()
        }
    }
}
