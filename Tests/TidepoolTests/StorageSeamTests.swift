import Foundation
import XCTest

@testable import Tidepool

/// The engine reaches storage only through `StorageBackend`: a database lives wholly in the
/// in-memory store, survives a simulated power cut with every synced write, and a failing disk
/// (the fault-injecting store) gives errors that name the file, while what was acknowledged stays.
final class StorageSeamTests: XCTestCase {
    private func documents(_ range: Range<Int>, dim: Int = 8) -> [Document] {
        let v = randomVectors(range.upperBound, dim, seed: 3)
        return range.map { Document(id: .uint(UInt64($0)), vector: v[$0], attributes: ["i": .int(Int64($0))]) }
    }

    func testADatabaseLivesWhollyInTheInMemoryStore() throws {
        let memory = MemoryStorage()
        do {
            let db = try Database(storage: memory, path: memory.location, options: DatabaseOptions())
            let c = try db.createCollection("v", dimension: 8, metric: .l2, config: CollectionConfig(minRowsForGraph: 100))
            try c.upsert(documents(0..<600))
            try c.flush()
            try c.upsert(documents(600..<900))
            try c.flush()
            try c.compact()
            try c.delete(ids: [1, 2, 3])
            try db.close()
        }
        XCTAssertTrue(memory.allFiles.contains("MANIFEST"))
        XCTAssertTrue(memory.allFiles.contains { $0.hasPrefix("collections/v/segments/") && $0.hasSuffix(".tps") })
        XCTAssertTrue(memory.allFiles.contains { $0.hasPrefix("collections/v/wal/") })
        XCTAssertEqual(Database.verify(storage: memory, path: memory.location), [])
        let db = try Database(storage: memory, path: memory.location, options: DatabaseOptions())
        let c = try db.collection("v")
        XCTAssertEqual(c.count, 897)
        XCTAssertEqual(c.info().segments.count, 1)
        XCTAssertTrue(try c.get(ids: [1, 2, 3]).isEmpty)
        XCTAssertEqual(try c.get(ids: [800]).first?.attributes["i"], .int(800))
        try db.close()
    }

    /// Under `always`, every acknowledged write is synced before `upsert` returns, so a power cut
    /// (log bytes past the last sync dropped) loses none of them.
    func testEveryAcknowledgedWriteSurvivesAPowerCutUnderAlways() throws {
        let memory = MemoryStorage()
        let db = try Database(storage: memory, path: memory.location, options: DatabaseOptions(syncPolicy: .always))
        let c = try db.createCollection("v", dimension: 8, metric: .l2)
        for start in stride(from: 0, to: 500, by: 50) { try c.upsert(documents(start..<(start + 50))) }
        try c.delete(ids: [7, 8])
        memory.simulatePowerLoss()  // no close: the process is gone
        let again = try Database(storage: memory, path: memory.location, options: DatabaseOptions())
        XCTAssertEqual(try again.collection("v").count, 498)
        XCTAssertTrue(try again.collection("v").get(ids: [7, 8]).isEmpty)
        try again.close()
        _ = db
    }

    /// A failed log write is refused with an error naming the log file, and nothing of the batch
    /// is applied; what was acknowledged before is still there after reopening.
    func testAFailedLogWriteIsReportedAndLosesNothingAcknowledged() throws {
        let faulty = FaultInjectingStorage(MemoryStorage())
        let db = try Database(storage: faulty, path: faulty.location, options: DatabaseOptions())
        let c = try db.createCollection("v", dimension: 8, metric: .l2)
        try c.upsert(documents(0..<100))
        faulty.inject(.init(operation: .write, nth: 1, errno: ENOSPC, short: true))
        XCTAssertThrowsError(try c.upsert(documents(100..<200))) { e in
            XCTAssertTrue("\(e)".contains("collections/v/wal/"), "\(e)")
            XCTAssertTrue("\(e)".contains("No space left"), "\(e)")
        }
        XCTAssertEqual(c.count, 100)
        XCTAssertEqual(faulty.fired.count, 1)
        faulty.heal()
        try? db.close()
        let again = try Database(storage: faulty, path: faulty.location, options: DatabaseOptions())
        XCTAssertEqual(try again.collection("v").count, 100)
        try again.close()
    }

    /// A flush whose segment write, fsync or manifest swap fails reports it; the collection keeps
    /// every document (the log still holds them) and reopens whole.
    func testAFailedFlushKeepsEveryDocument() throws {
        for (operation, nth) in [(FaultInjectingStorage.Operation.write, 2), (.sync, 1), (.rename, 1)] {
            let faulty = FaultInjectingStorage(MemoryStorage())
            let db = try Database(storage: faulty, path: faulty.location, options: DatabaseOptions(syncPolicy: .none))
            let c = try db.createCollection("v", dimension: 8, metric: .l2, config: CollectionConfig(minRowsForGraph: 100))
            try c.upsert(documents(0..<300))
            faulty.inject(.init(operation: operation, nth: nth, errno: EIO))
            XCTAssertThrowsError(try c.flush(), "\(operation)") { e in
                XCTAssertTrue("\(e)".contains("injected"), "\(operation): \(e)")
            }
            XCTAssertEqual(c.count, 300, "\(operation)")
            XCTAssertEqual(try c.get(ids: [299]).first?.attributes["i"], .int(299), "\(operation)")
            faulty.heal()
            try? db.close()
            let again = try Database(storage: faulty, path: faulty.location, options: DatabaseOptions())
            XCTAssertEqual(try again.collection("v").count, 300, "\(operation)")
            try again.close()
            XCTAssertEqual(Database.verify(storage: faulty, path: faulty.location), [], "\(operation)")
        }
    }
}
