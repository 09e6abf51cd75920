import Foundation
import XCTest

@testable import Tidepool

/// Backups of a live collection and restores that check every byte.
final class BackupTests: XCTestCase {
    let dim = 16

    func docs(_ ids: Range<Int>) -> [Document] { randomDocuments(ids, dimension: dim, seed: 31) }

    func exact(_ c: Collection, _ q: [Float]) throws -> [DocumentID] {
        try c.search(vector: q, k: 15, options: SearchOptions(exact: true)).map(\.id)
    }

    /// A database with collection "c": two flushed segments, a deletion, and writes only in the log.
    func makeSource(_ dir: TempDir) throws -> Database {
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: dim, metric: .cosine)
        try c.upsert(docs(0..<400))
        try c.flush()
        try c.upsert(docs(400..<700))
        try c.flush()
        try c.delete(ids: [.uint(5), .uint(6)])
        try c.upsert(docs(700..<760))  // acknowledged, not flushed
        return db
    }

    func testABackupOfALiveCollectionRestoresEveryAcknowledgedWrite() throws {
        let (src, out, dst) = (TempDir(), TempDir(), TempDir())
        let db = try makeSource(src)
        let c = try db.collection("c")
        // The source stays open as the writer: the backup takes no lock.
        let queries = randomVectors(5, dim, seed: 3)
        let expected = try queries.map { try exact(c, $0) }
        let report = try Backup.create(source: src.path, collection: "c", destination: out.path + "/b1")
        XCTAssertEqual(report.version, c.version)
        XCTAssertGreaterThan(report.bytes, 700 * dim * 4)
        XCTAssertThrowsError(try Backup.create(source: src.path, collection: "c", destination: out.path + "/b1")) { e in
            guard case .alreadyExists? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        try c.upsert(docs(2000..<2010))  // after the backup: not in it
        let target = try Database(path: dst.path)
        try target.restoreBackup(from: out.path + "/b1", as: "copy")
        let copy = try target.collection("copy")
        XCTAssertEqual(copy.count, 758)
        XCTAssertEqual(try copy.get(ids: [.uint(5), .uint(750), .uint(2005)]).map(\.id), [.uint(750)])
        XCTAssertEqual(try queries.map { try exact(copy, $0) }, expected)
        XCTAssertThrowsError(try target.restoreBackup(from: out.path + "/b1", as: "copy")) { e in
            guard case .collectionExists? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        try target.close()
        try db.close()
        XCTAssertEqual(Database.verify(path: dst.path), [])
    }

    func testTheRestoredCollectionAnswersAsTheSourceDid() throws {
        let (src, out, dst) = (TempDir(), TempDir(), TempDir())
        let db = try makeSource(src)
        let c = try db.collection("c")
        let queries = randomVectors(10, dim, seed: 4)
        let expected = try queries.map { try exact(c, $0) }
        let approximate = try queries.map { try c.search(vector: $0, k: 10).map(\.id) }
        try Backup.create(source: src.path, collection: "c", destination: out.path)
        try db.close()
        let target = try Database(path: dst.path)
        try target.restoreBackup(from: out.path)
        let copy = try target.collection("c")
        XCTAssertEqual(try queries.map { try exact(copy, $0) }, expected)
        XCTAssertEqual(try queries.map { try copy.search(vector: $0, k: 10).map(\.id) }, approximate)
        try target.close()
    }

    func testABackupRestoresToASequenceNumberInsideItsLog() throws {
        let (src, out, dst) = (TempDir(), TempDir(), TempDir())
        let db = try makeSource(src)  // flushed twice, then a deletion and 60 writes only in the log
        let c = try db.collection("c")
        try c.upsert(docs(800..<810))
        let point = c.info().lastSeq
        let expected = try exact(c, randomVectors(1, dim, seed: 8)[0])
        try c.upsert(docs(900..<950))
        try c.delete(ids: [.uint(801)])
        try Backup.create(source: src.path, collection: "c", destination: out.path)
        try db.close()
        let target = try Database(path: dst.path)
        try target.restoreBackup(from: out.path, as: "then", toSequence: point)
        XCTAssertEqual(try target.collection("then").count, 768)
        XCTAssertEqual(try exact(try target.collection("then"), randomVectors(1, dim, seed: 8)[0]), expected)
        XCTAssertThrowsError(try target.restoreBackup(from: out.path, as: "future", toSequence: point + 1000))
        XCTAssertFalse(target.collectionNames.contains("future"), "a restore that cannot reach its point leaves nothing")
        try target.close()
    }

    func testADamagedOrMissingFileFailsNamingItAndCreatesNothing() throws {
        let (src, out, dst) = (TempDir(), TempDir(), TempDir())
        let db = try makeSource(src)
        try Backup.create(source: src.path, collection: "c", destination: out.path)
        try db.close()
        let segments = out.path + "/files/segments"
        let seg = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: segments).sorted().first { $0.hasSuffix(".tps") })
        let path = segments + "/" + seg
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let original = bytes
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let target = try Database(path: dst.path)
        XCTAssertThrowsError(try target.restoreBackup(from: out.path)) { e in
            guard case .corrupt(let f, let o, _)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertEqual(f, path)
            XCTAssertEqual(o, (original.count / 2) / BackupManifest.chunkBytes * BackupManifest.chunkBytes)
        }
        XCTAssertEqual(target.collectionNames, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dst.path + "/collections/c"))
        try FileManager.default.removeItem(atPath: path)
        XCTAssertThrowsError(try target.restoreBackup(from: out.path)) { e in
            guard case .corrupt(let f, 0, let reason)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertEqual(f, path)
            XCTAssertTrue(reason.contains("missing"), reason)
        }
        try FileManager.default.removeItem(atPath: out.path + "/BACKUP")
        XCTAssertThrowsError(try target.restoreBackup(from: out.path)) { e in
            guard case .notFound? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(target.collectionNames, [])
        try target.close()
    }

    func testABackupManifestCannotReachOutsideTheCollection() throws {
        let (src, out, dst) = (TempDir(), TempDir(), TempDir())
        let db = try makeSource(src)
        try Backup.create(source: src.path, collection: "c", destination: out.path)
        try db.close()
        let path = out.path + "/BACKUP"
        let original = try BackupManifest.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), file: path)
        let victim = dst.path + "/../victim-\(getpid())"
        FileManager.default.createFile(atPath: victim, contents: Data("keep".utf8))
        defer { try? FileManager.default.removeItem(atPath: victim) }
        // Retired files, snapshots and restore points of the source are not restored: a retired
        // path outside the collection is never collected.
        var hostile = original
        hostile.entry.retired = [
            Manifest.RetiredFile(file: "../../../" + URL(fileURLWithPath: victim).lastPathComponent, generation: 0, time: 0)
        ]
        hostile.entry.snapshots = [CollectionSnapshot(name: "s", version: 999, created: 0)]
        try Data(try hostile.encoded()).write(to: URL(fileURLWithPath: path))
        let target = try Database(path: dst.path, options: DatabaseOptions(versionRetention: .currentOnly))
        try target.restoreBackup(from: out.path)
        let c = try target.collection("c")
        XCTAssertEqual(c.snapshots, [])
        try c.upsert(docs(5000..<5001))
        try c.compact()
        c.background.sync {}
        XCTAssertTrue(FileManager.default.fileExists(atPath: victim))
        // A segment named outside the engine's names, or a dimension no collection can have, is refused.
        for mutate in [{ (m: inout BackupManifest) in m.entry.segments[0].file = "../x.tps" }, { m in m.entry.dimension = 0 }] {
            var bad = original
            mutate(&bad)
            try Data(try bad.encoded()).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try target.restoreBackup(from: out.path, as: "other")) { e in
                guard case .corrupt? = e as? TidepoolError else { return XCTFail("\(e)") }
            }
            XCTAssertFalse(target.collectionNames.contains("other"))
        }
        try target.close()
    }

    func testAHostileBackupManifestIsRefused() throws {
        let entry = Manifest.CollectionEntry(
            name: "c", dimension: 4, metric: .l2, config: CollectionConfig(), flushedSeq: 0, nextSegmentID: 1, segments: [])
        for name in ["../../etc/passwd", "segments/../x", "wal/.hidden", "other/x", "segments/"] {
            let m = BackupManifest(
                created: 0, source: "s", collection: "c", version: 1, entry: entry, chunk: 4,
                files: [.init(name: name, bytes: 0, checksums: [])])
            XCTAssertThrowsError(try BackupManifest.decode(try m.encoded(), file: "B"), name)
        }
        let wrongCount = BackupManifest(
            created: 0, source: "s", collection: "c", version: 1, entry: entry, chunk: 4,
            files: [.init(name: "segments/a.tps", bytes: 9, checksums: [1, 2])])
        XCTAssertThrowsError(try BackupManifest.decode(try wrongCount.encoded(), file: "B"))
        let overflowing = BackupManifest(
            created: 0, source: "s", collection: "c", version: 1, entry: entry, chunk: 4,
            files: [
                .init(name: "segments/a.tps", bytes: Int.max, checksums: []), .init(name: "segments/b.tps", bytes: Int.max, checksums: []),
            ])
        XCTAssertThrowsError(try BackupManifest.decode(try overflowing.encoded(), file: "B"))
    }
}
