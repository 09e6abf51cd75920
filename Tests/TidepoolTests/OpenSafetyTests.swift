import Foundation
import XCTest

@testable import Tidepool

/// Opening never destroys data: a lost manifest is an error, not "no collections"; the lock
/// cannot be sidestepped by deleting a file; read-only opens (and the commands built on them)
/// change no byte; a new log file never replaces one that holds frames.
final class OpenSafetyTests: XCTestCase {
    private func makeDatabase(_ dir: TempDir) throws {
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 4, metric: .l2, config: CollectionConfig(minRowsForGraph: 100))
        try c.upsert(randomVectors(300, 4, seed: 1).enumerated().map { Document(id: .uint(UInt64($0.offset)), vector: $0.element) })
        try c.flush()
        try c.upsert(Document(id: 1000, vector: [1, 2, 3, 4]))
        try db.createCollection("d", dimension: 2, metric: .cosine).upsert(Document(id: 1, vector: [1, 1]))
        try db.close()
    }

    /// Every file under `dir` (but LOCK) and its bytes.
    private func contents(_ dir: String) -> [String: Data] {
        var out: [String: Data] = [:]
        let e = FileManager.default.enumerator(atPath: dir)
        while let rel = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue, rel != "LOCK" else {
                continue
            }
            out[rel] = FileManager.default.contents(atPath: dir + "/" + rel)
        }
        return out
    }

    func testAMissingManifestIsAnErrorAndDeletesNothing() throws {
        let dir = TempDir()
        try makeDatabase(dir)
        try FileManager.default.removeItem(atPath: dir.path + "/MANIFEST")
        let before = contents(dir.path)
        XCTAssertThrowsError(try Database(path: dir.path)) { e in
            guard case .corrupt(let file, _, let reason) = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(file.hasSuffix("MANIFEST"), file)
            XCTAssertTrue(reason.contains("collections/ holds c, d"), reason)
        }
        XCTAssertThrowsError(try Database(path: dir.path, options: DatabaseOptions(readOnly: true)))
        XCTAssertEqual(Database.verify(path: dir.path).count, 1)
        XCTAssertEqual(contents(dir.path), before, "every collection's files are still there, unchanged")
    }

    func testDeletingTheLockFileDoesNotLetASecondWriterIn() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        try FileManager.default.removeItem(atPath: dir.path + "/LOCK")
        XCTAssertThrowsError(try Database(path: dir.path)) { e in
            guard case .locked = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        // Readers are kept out while a writer holds it, and the other way round.
        XCTAssertThrowsError(try Database(path: dir.path, options: DatabaseOptions(readOnly: true)))
        try db.close()
        let r1 = try Database(path: dir.path, options: DatabaseOptions(readOnly: true))
        let r2 = try Database(path: dir.path, options: DatabaseOptions(readOnly: true))
        XCTAssertThrowsError(try Database(path: dir.path))
        try r1.close()
        try r2.close()
        try Database(path: dir.path).close()
    }

    /// Read-only opens, `verify` and the read-only commands change no byte of a database that has
    /// a WAL tail, a torn final write, an orphan segment and a manifest leftover; writes are refused.
    func testReadOnlyOpensChangeNothing() throws {
        let dir = TempDir()
        try makeDatabase(dir)
        let walDir = dir.path + "/collections/c/wal"
        let last = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: walDir).sorted().last)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: walDir + "/" + last))
        handle.seekToEndOfFile()
        handle.write(Data([40, 0, 0, 0, 1, 2, 3]))  // an unfinished frame
        handle.closeFile()
        FileManager.default.createFile(atPath: dir.path + "/collections/c/segments/000000000099.tps", contents: Data([1, 2, 3]))
        FileManager.default.createFile(atPath: dir.path + "/MANIFEST.tmp", contents: Data([9]))
        let before = contents(dir.path)

        let db = try Database(path: dir.path, options: DatabaseOptions(readOnly: true))
        let c = try db.collection("c")
        XCTAssertEqual(c.count, 301)
        XCTAssertEqual(try c.get(ids: [1000]).first?.vector, [1, 2, 3, 4])
        XCTAssertEqual(try c.search(vector: [1, 2, 3, 4], k: 1).first?.id, 1000)
        XCTAssertThrowsError(try c.upsert(Document(id: 5, vector: [1, 1, 1, 1]))) { e in
            guard case .readOnly = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try c.delete(ids: [1]))
        XCTAssertThrowsError(try c.flush())
        XCTAssertThrowsError(try c.updateIndexSettings { $0.maxSegments = 3 })
        XCTAssertThrowsError(try db.createCollection("e", dimension: 2, metric: .l2))
        XCTAssertThrowsError(try db.dropCollection("d"))
        try db.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
        XCTAssertEqual(contents(dir.path), before, "read-only opens and verify changed the directory")

        // A path that holds no database is an error for read-only opens, and nothing is created.
        let missing = dir.path + "-typo"
        XCTAssertThrowsError(try Database(path: missing, options: DatabaseOptions(readOnly: true)))
        XCTAssertThrowsError(try Database(path: missing, options: DatabaseOptions(createIfMissing: false)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing))
        XCTAssertEqual(Database.verify(path: missing).count, 1)
        // A file is not a database directory.
        XCTAssertThrowsError(try Database(path: dir.path + "/MANIFEST"))
    }

    func testANewLogFileNeverReplacesOneHoldingFrames() throws {
        let dir = TempDir()
        let storage = try LocalStorage(root: dir.path)
        let wal = try WriteAheadLog(
            storage: storage, folder: "wal", dimension: 2, collection: "c", policy: .none, syncInterval: 1, lastSeq: 0)
        try wal.commit(.upsert([Document(id: 1, vector: [1, 2])]))
        try wal.close()
        let name = "wal/" + WALFormat.fileName(firstSeq: 1)
        let size = try storage.size(of: name)
        // Opened again as if nothing had been logged: it must not start a file over this one.
        XCTAssertThrowsError(
            try WriteAheadLog(storage: storage, folder: "wal", dimension: 2, collection: "c", policy: .none, syncInterval: 1, lastSeq: 0)
        ) { e in
            guard case .corrupt = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(try storage.size(of: name), size)
    }
}
