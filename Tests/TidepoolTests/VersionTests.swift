import Foundation
import XCTest

@testable import Tidepool

/// Versions, reads `asOf` them, retention, snapshots, restores and branches, through the public
/// API of a local database.
final class VersionTests: XCTestCase {
    let dim = 16

    func docs(_ ids: Range<Int>, seed: UInt64 = 7) -> [Document] {
        randomDocuments(ids, dimension: dim, seed: seed).map { d in
            var d = d
            d.attributes = ["n": .int(Int64(d.id.description) ?? 0)]
            return d
        }
    }

    func exactIDs(_ c: Collection, _ q: [Float], asOf: VersionSelector? = nil) throws -> [DocumentID] {
        try c.search(vector: q, k: 20, options: SearchOptions(exact: true, asOf: asOf)).map(\.id)
    }

    func testEachFlushIsAVersionThatReadsAnswerExactlyAsTheyDidThen() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: dim, metric: .l2)
        let q = randomVectors(1, dim, seed: 99)[0]
        var seen: [(version: UInt64, ids: [DocumentID], count: Int, page: [DocumentID])] = []
        func remember() throws {
            let page = try c.scan(limit: 50, includeVectors: false).documents.map(\.id)
            seen.append((c.version, try exactIDs(c, q), c.count, page))
        }
        try c.upsert(docs(0..<300))
        try c.flush()
        try remember()
        try c.upsert(docs(300..<600))
        try c.upsert(docs(0..<50, seed: 8))  // replaces 50 rows of the first segment
        try c.flush()
        try remember()
        try c.delete(ids: (100..<105).map { .uint(UInt64($0)) })  // few enough not to start a compaction
        try c.flush()
        try remember()
        try c.compact()
        try remember()
        XCTAssertEqual(seen.map(\.version), [1, 2, 3, 4])
        try c.upsert(docs(600..<700))  // not flushed: in no version
        for s in seen {
            XCTAssertEqual(try exactIDs(c, q, asOf: .version(s.version)), s.ids, "version \(s.version)")
            XCTAssertEqual(try c.count(filter: nil, asOf: .version(s.version)), s.count)
            XCTAssertEqual(try c.scan(limit: 50, includeVectors: false, asOf: .version(s.version)).documents.map(\.id), s.page)
        }
        // get asOf: a replaced document has its old vector in version 1, its new one in 2.
        let old = try c.get(ids: [.uint(7)], asOf: .version(1))
        let new = try c.get(ids: [.uint(7)], asOf: .version(2))
        XCTAssertEqual(old.first?.vector, docs(7..<8)[0].vector)
        XCTAssertEqual(new.first?.vector, docs(7..<8, seed: 8)[0].vector)
        XCTAssertEqual(try c.get(ids: [.uint(102)], asOf: .version(2)).count, 1)
        XCTAssertEqual(try c.get(ids: [.uint(102)], asOf: .version(3)).count, 0)
        // By time: the newest version at or before it.
        let versions = try c.versions()
        XCTAssertEqual(versions.map(\.number), [1, 2, 3, 4])
        XCTAssertEqual(versions.map(\.documents), seen.map(\.count))
        XCTAssertEqual(try exactIDs(c, q, asOf: .time(versions[1].time)), seen[1].ids)
        XCTAssertThrowsError(try exactIDs(c, q, asOf: .version(9))) { e in
            guard case .notFound(let m)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("no version 9"), m)
        }
        XCTAssertThrowsError(try exactIDs(c, q, asOf: .time(Date(timeIntervalSince1970: 1))))
        // Kept across a reopen, and the replaced segments with them.
        try db.close()
        let again = try Database(path: dir.path)
        let c2 = try again.collection("c")
        XCTAssertEqual(try c2.versions().map(\.number), [1, 2, 3, 4])
        for s in seen { XCTAssertEqual(try exactIDs(c2, q, asOf: .version(s.version)), s.ids) }
        try again.close()
    }

    func testRetentionDropsOldVersionsAndTheFilesOnlyTheyNamed() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path, options: DatabaseOptions(versionRetention: VersionRetention(keepLast: 2, keepFor: .zero)))
        let c = try db.createCollection("c", dimension: dim, metric: .l2)
        for i in 0..<4 {
            try c.upsert(docs(i * 100..<(i + 1) * 100))
            try c.flush()
        }
        try c.compact()  // version 5; versions 1-4 named the four replaced segments
        try c.upsert(docs(400..<500))
        try c.flush()  // version 6
        waitForBackground(c)
        XCTAssertEqual(try c.versions().map(\.number), [5, 6])
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/collections/c/segments").filter {
            $0.hasSuffix(".tps")
        }
        XCTAssertEqual(files.count, 2, "the compacted segment and the new one: \(files)")
        XCTAssertThrowsError(try c.search(vector: docs(0..<1)[0].vector, k: 5, options: SearchOptions(asOf: .version(2)))) { e in
            guard case .notFound? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        try db.close()
    }

    func testASnapshotKeepsItsVersionPastRetentionUntilItIsDeleted() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path, options: DatabaseOptions(versionRetention: .currentOnly))
        let c = try db.createCollection("c", dimension: dim, metric: .l2)
        try c.upsert(docs(0..<200))
        let snap = try c.createSnapshot("before-import")  // flushes: holds every acknowledged write
        XCTAssertEqual(snap.version, 1)
        XCTAssertThrowsError(try c.createSnapshot("before-import")) { e in
            guard case .alreadyExists? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try c.createSnapshot("../x")) { e in
            guard case .invalidArgument? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        try c.upsert(docs(200..<400))
        try c.delete(ids: (0..<100).map { .uint(UInt64($0)) })
        try c.compact()
        waitForBackground(c)
        XCTAssertEqual(try c.versions().map(\.number), [1, 3])
        XCTAssertEqual(try c.versions().first?.snapshots, ["before-import"])
        XCTAssertEqual(try c.count(filter: nil, asOf: .version(1)), 200)
        let raw = try XCTUnwrap(try StorageLocation.directory(dir.path).open(create: false).readManifest())
        XCTAssertEqual(raw[8], 3, "a manifest with snapshots is format 3, which older code refuses")
        try db.close()
        // Across a reopen; then deleting it lets its files go.
        let again = try Database(path: dir.path, options: DatabaseOptions(versionRetention: .currentOnly))
        let c2 = try again.collection("c")
        XCTAssertEqual(c2.snapshots.map(\.name), ["before-import"])
        XCTAssertEqual(try c2.count(filter: nil, asOf: .version(1)), 200)
        try c2.deleteSnapshot("before-import")
        XCTAssertThrowsError(try c2.deleteSnapshot("before-import")) { e in
            guard case .notFound? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        waitForBackground(c2)
        XCTAssertEqual(try c2.versions().map(\.number), [3])
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/collections/c/segments")
        XCTAssertEqual(files.filter { $0.hasSuffix(".tps") }.count, 1, "\(files)")
        XCTAssertEqual(c2.count, 300)
        try again.close()
    }

    func testRestoreMakesAnOldVersionCurrentAsANewVersionAndUndoesLaterWrites() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        var c = try db.createCollection("c", dimension: dim, metric: .l2)
        let q = randomVectors(1, dim, seed: 5)[0]
        try c.upsert(docs(0..<300))
        try c.flush()
        let v1 = try exactIDs(c, q)
        try c.delete(ids: (0..<300).filter { $0 % 2 == 0 }.map { .uint(UInt64($0)) })  // a bad import's damage
        try c.upsert(docs(300..<400))
        try c.compact()
        try c.upsert(docs(400..<450))  // logged, never flushed
        let restored = try db.restoreCollection("c", to: .version(1))
        c = try db.collection("c")
        XCTAssertEqual(restored, c.version)
        XCTAssertEqual(c.count, 300)
        XCTAssertEqual(try exactIDs(c, q), v1)
        XCTAssertEqual(try exactIDs(c, q, asOf: .version(restored - 1)).count, 20, "the undone state is still a version")
        XCTAssertNotEqual(try exactIDs(c, q, asOf: .version(restored - 1)), v1)
        try c.upsert(docs(1000..<1010))
        XCTAssertEqual(c.count, 310)
        try db.close()
        // The unflushed writes the restore undid are not replayed on open.
        let again = try Database(path: dir.path)
        let c2 = try again.collection("c")
        XCTAssertEqual(c2.count, 310)
        XCTAssertEqual(try c2.get(ids: [.uint(420)]).count, 0)
        XCTAssertEqual(try c2.get(ids: [.uint(1005)]).count, 1)
        XCTAssertThrowsError(try again.restoreCollection("c", to: .version(99))) { e in
            guard case .notFound? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(try again.collection("c").count, 310, "a refused restore changes nothing")
        try again.close()
    }

    func testABranchSharesFilesAndDivergesFromItsSource() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let src = try db.createCollection("src", dimension: dim, metric: .l2)
        try src.upsert(docs(0..<500))
        try src.flush()
        try src.upsert(docs(500..<600))  // unflushed: the branch still gets it (the source is flushed first)
        let report = try db.createBranch("exp", from: "src")
        XCTAssertEqual(report.bytesCopied, 0, "hard links: nothing copied")
        XCTAssertGreaterThan(report.filesShared, 0)
        XCTAssertLessThan(report.bytesWritten, 64 * 1024)
        let exp = try db.collection("exp")
        XCTAssertEqual(exp.count, 600)
        try exp.delete(ids: (0..<100).map { .uint(UInt64($0)) })
        try exp.upsert(docs(5000..<5010))
        try src.upsert(docs(7000..<7005))
        XCTAssertEqual(src.count, 605)
        XCTAssertEqual(exp.count, 510)
        XCTAssertEqual(try src.get(ids: [.uint(5001)]).count, 0)
        XCTAssertEqual(try exp.get(ids: [.uint(7001)]).count, 0)
        XCTAssertThrowsError(try db.createBranch("exp", from: "src")) { e in
            guard case .collectionExists? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        // A branch of a past version; then the source dropped: the branches keep their files.
        let old = try db.createBranch("old", from: "src", at: .version(1))
        XCTAssertEqual(old.version, 1)
        XCTAssertEqual(try db.collection("old").count, 500)
        try exp.compact()
        try db.dropCollection("src")
        try db.close()
        let again = try Database(path: dir.path)
        XCTAssertEqual(try again.collection("exp").count, 510)
        XCTAssertEqual(try again.collection("old").count, 500)
        XCTAssertEqual(again.collectionNames, ["exp", "old"])
        try again.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
    }

    func testARestoreToASequenceNumberReplaysTheLogAfterAKeptVersion() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        var c = try db.createCollection("c", dimension: dim, metric: .l2)
        let q = randomVectors(1, dim, seed: 17)[0]
        try c.upsert(docs(0..<300))
        try c.flush()  // version 1
        try c.upsert(docs(300..<340))
        try c.delete(ids: [.uint(5), .uint(6)])
        try c.upsert(docs(10..<12, seed: 99))  // replaces two rows of version 1
        let point = c.info().lastSeq
        let expected = (try exactIDs(c, q), c.count, try c.get(ids: [.uint(10)]).first?.vector)
        // A bad import, flushed and compacted: the point is between versions now.
        try c.delete(ids: (0..<200).map { .uint(UInt64($0)) })
        try c.upsert(docs(1000..<1100))
        try c.compact()
        let version = try db.restoreCollection("c", toSequence: point)
        c = try db.collection("c")
        XCTAssertEqual(c.version, version)
        XCTAssertEqual(c.count, expected.1)
        XCTAssertEqual(try exactIDs(c, q), expected.0)
        XCTAssertEqual(try c.get(ids: [.uint(10)]).first?.vector, expected.2)
        XCTAssertEqual(try c.get(ids: [.uint(5), .uint(1050)]).count, 0)
        // The restored state survives a reopen, writes go on, and the exact point before the
        // first version's flush is a plain version restore.
        try c.upsert(docs(2000..<2001))
        try db.close()
        let again = try Database(path: dir.path)
        let c2 = try again.collection("c")
        XCTAssertEqual(c2.count, expected.1 + 1)
        XCTAssertEqual(try exactIDs(c2, q, asOf: .version(version)), expected.0)
        XCTAssertThrowsError(try again.restoreCollection("c", toSequence: c2.info().lastSeq + 10)) { e in
            guard case .invalidArgument? = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        try again.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
    }

    func testASequenceBeforeEveryKeptVersionOrAcrossALostRestoreIsRefused() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path, options: DatabaseOptions(versionRetention: .currentOnly))
        let c = try db.createCollection("c", dimension: dim, metric: .l2)
        try c.upsert(docs(0..<100))
        let early = c.info().lastSeq
        try c.flush()
        try c.upsert(docs(100..<200))
        try c.flush()
        c.background.sync {}
        XCTAssertThrowsError(try db.restoreCollection("c", toSequence: early)) { e in
            guard case .notFound(let m)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("no version at or before"), m)
        }
        XCTAssertEqual(try db.collection("c").count, 200, "a refused restore changes nothing")
        try db.close()

        // A snapshot keeps version 2; a restore to version 1 then commits version 3, which
        // retention drops: the log after version 2 no longer describes the state past the restore.
        let dir2 = TempDir()
        let db2 = try Database(path: dir2.path, options: DatabaseOptions(versionRetention: VersionRetention(keepLast: 2, keepFor: .zero)))
        var d = try db2.createCollection("d", dimension: dim, metric: .l2)
        try d.upsert(docs(0..<100))
        try d.flush()
        try d.upsert(docs(100..<150))
        try d.flush()
        try d.createSnapshot("two", version: 2)
        try db2.restoreCollection("d", to: .version(1))
        d = try db2.collection("d")
        try d.upsert(docs(500..<510))
        let afterRestore = d.info().lastSeq
        for i in 0..<3 {
            try d.upsert(docs(600 + i * 10..<610 + i * 10))
            try d.flush()
        }
        d.background.sync {}
        XCTAssertFalse(try d.versions().map(\.number).contains(3))
        XCTAssertThrowsError(try db2.restoreCollection("d", toSequence: afterRestore)) { e in
            guard case .notFound(let m)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("a restore at sequence"), m)
        }
        try db2.close()
    }

    func testAnEmptyCollectionBranchesSnapshotsAndBacksUp() throws {
        let (dir, out) = (TempDir(), TempDir())
        let db = try Database(path: dir.path)
        try db.createCollection("empty", dimension: dim, metric: .l2)
        let report = try db.createBranch("copy", from: "empty")
        XCTAssertEqual(report.filesShared, 0)
        XCTAssertEqual(try db.collection("copy").count, 0)
        try db.collection("copy").upsert(docs(0..<3))
        XCTAssertEqual(try db.collection("copy").count, 3)
        XCTAssertEqual(try db.collection("empty").createSnapshot("none").version, 1)
        try Backup.create(source: dir.path, collection: "empty", destination: out.path + "/b")
        try db.restoreBackup(from: out.path + "/b", as: "restored")
        XCTAssertEqual(try db.collection("restored").count, 0)
        try db.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
    }

    func testAVersionRecordLostToACrashIsWrittenAgainOnOpen() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: dim, metric: .l2)
        try c.upsert(docs(0..<100))
        try c.flush()
        try db.close()
        let record = dir.path + "/collections/c/versions/" + VersionRecord.fileName(1)
        try FileManager.default.removeItem(atPath: record)  // as if killed between the manifest and the record
        let again = try Database(path: dir.path)
        XCTAssertEqual(try again.collection("c").versions().map(\.number), [1])
        XCTAssertTrue(FileManager.default.fileExists(atPath: record))
        try again.close()
        // A damaged record is reported with its file, and nothing is collected meanwhile.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: record)))
        bytes[bytes.count - 3] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: record))
        let third = try Database(path: dir.path)
        XCTAssertThrowsError(try third.collection("c").versions()) { e in
            guard case .corrupt(let f, let o, _)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(f.hasSuffix(VersionRecord.fileName(1)), f)
            XCTAssertEqual(o, ChecksummedJSON.headerSize)
        }
        XCTAssertEqual(try third.collection("c").count, 100)
        try third.close()
    }

    /// Waits until the collection's background queue has run what was queued (a GC round).
    func waitForBackground(_ c: Collection) {
        c.background.sync {}
        c.background.sync {}
    }
}
