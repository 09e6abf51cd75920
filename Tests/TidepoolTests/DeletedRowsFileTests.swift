import Foundation
import XCTest

@testable import Tidepool

/// A segment's deletions beyond `DeletedRowsFile.inlineLimit` live in a file of their own, not
/// in the manifest: written by the flush that persists them, reused while they do not grow,
/// replaced (the old file deleted, or on object storage retired) when they do, read back on open,
/// and reported with file and offset when damaged.
final class DeletedRowsFileTests: XCTestCase {
    func docs(_ ids: Range<Int>) -> [Document] { randomDocuments(ids, seed: 21) }

    func ids(_ r: StrideTo<Int>) -> [DocumentID] { r.map { .uint(UInt64($0)) } }

    func testEncodingRoundTripsAndDamageIsReportedWithItsOffset() throws {
        let file = DeletedRowsFile(segmentID: 0x1_0000_0002, rows: [1, 5, 9, 400])
        let bytes = file.encoded()
        XCTAssertEqual(bytes.count, DeletedRowsFile.headerSize + 4 * 4 + 4)
        XCTAssertEqual(try DeletedRowsFile.decode(bytes, file: "d"), file)
        for i in [0, 8, 12, 20, 26, bytes.count - 1] {
            var b = bytes
            b[i] ^= 0x40
            XCTAssertThrowsError(try DeletedRowsFile.decode(b, file: "d"), "flip at \(i)") { e in
                guard case .corrupt(let f, _, _)? = e as? TidepoolError else { return XCTFail("\(e)") }
                XCTAssertEqual(f, "d")
            }
        }
        XCTAssertThrowsError(try DeletedRowsFile.decode(Array(bytes.prefix(bytes.count - 4)), file: "d"))
        let unordered = DeletedRowsFile(segmentID: 1, rows: [3, 2]).encoded()
        XCTAssertThrowsError(try DeletedRowsFile.decode(unordered, file: "d")) { e in
            XCTAssertEqual(
                e as? TidepoolError, .corrupt(file: "d", offset: DeletedRowsFile.headerSize + 4, reason: "deleted rows out of order"))
        }
    }

    /// The manifest's entry for the 500-row segment of collection `c` in the database at `path`.
    func entry(_ path: String) throws -> Manifest.SegmentEntry {
        let bytes = try XCTUnwrap(try StorageLocation.directory(path).open(create: false).readManifest())
        let c = try XCTUnwrap(Manifest.decode(bytes, file: "MANIFEST").collections.first { $0.name == "c" })
        return try XCTUnwrap(c.segments.first { $0.rows == 500 })
    }

    func segmentFiles(_ path: String) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: path + "/collections/c/segments"))
    }

    func testALocalDatabaseKeepsManyDeletionsOutOfItsManifest() throws {
        let dir = TempDir()
        // Only the current version kept: a replaced file goes as soon as nothing names it.
        let options = DatabaseOptions(versionRetention: .currentOnly)
        var db: Database? = try Database(path: dir.path, options: options)
        var c = try XCTUnwrap(db).createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<500))
        try c.flush()
        XCTAssertEqual(try c.delete(ids: ids(stride(from: 0, to: 20, by: 1))), 20)
        try c.flush()
        XCTAssertNil(try entry(dir.path).deletedFile, "20 deletions stay inline")
        XCTAssertEqual(try entry(dir.path).deleted.count, 20)

        XCTAssertEqual(try c.delete(ids: ids(stride(from: 20, to: 60, by: 1))), 40)
        try c.flush()
        let first = try entry(dir.path)
        let firstFile = try XCTUnwrap(first.deletedFile, "60 deletions go to a file")
        XCTAssertEqual(first.deleted, [])
        XCTAssertTrue(try segmentFiles(dir.path).contains(firstFile))
        try c.upsert(docs(500..<501))
        try c.flush()
        XCTAssertEqual(try entry(dir.path).deletedFile, firstFile, "unchanged deletions reuse the file")

        XCTAssertEqual(try c.delete(ids: ids(stride(from: 60, to: 90, by: 1))), 30)
        try c.flush()
        let second = try XCTUnwrap(try entry(dir.path).deletedFile)
        XCTAssertNotEqual(second, firstFile)
        XCTAssertFalse(try segmentFiles(dir.path).contains(firstFile), "the replaced file is deleted")
        let manifestBytes = try FileManager.default.attributesOfItem(atPath: dir.path + "/MANIFEST")[.size] as? Int ?? 0
        XCTAssertLessThan(manifestBytes, 4096)
        try XCTUnwrap(db).close()

        db = try Database(path: dir.path, options: options)
        c = try XCTUnwrap(db).collection("c")
        XCTAssertEqual(c.count, 501 - 90)
        XCTAssertEqual(try c.get(ids: ids(stride(from: 0, to: 100, by: 1))).count, 10, "deleted ids stay deleted after reopening")
        try c.compact()
        XCTAssertTrue(try segmentFiles(dir.path).allSatisfy { !$0.hasSuffix(".del") }, "a compaction leaves no deletions to keep")
        XCTAssertEqual(c.count, 501 - 90)
        try XCTUnwrap(db).close()
    }

    func testADamagedDeletedRowsFileMakesItsCollectionUnavailableNamingTheFile() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        try db.createCollection("other", dimension: 8, metric: .l2).upsert(docs(0..<3))
        try c.upsert(docs(0..<500))
        try c.flush()
        _ = try c.delete(ids: ids(stride(from: 0, to: 50, by: 1)))
        try c.flush()
        try db.close()
        let file = try XCTUnwrap(try entry(dir.path).deletedFile)
        let path = dir.path + "/collections/c/segments/" + file
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[DeletedRowsFile.headerSize + 8] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let reopened = try Database(path: dir.path)
        XCTAssertThrowsError(try reopened.collection("c")) { e in
            guard case .corrupt(let f, let offset, _)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(f.hasSuffix(file), f)
            XCTAssertEqual(offset, bytes.count - 4)
        }
        XCTAssertEqual(try reopened.collection("other").count, 3, "the other collection is served")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "nothing is deleted to 'repair' it")
        try reopened.close()
    }

    /// A manifest naming a deleted-rows file outside `segments/`, or a file larger than its
    /// segment's rows can make it, is damage: reported, nothing read or deleted beyond it.
    func testAHostileFileNameOrAnOversizedFileIsRefused() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<500))
        try c.flush()
        _ = try c.delete(ids: ids(stride(from: 0, to: 50, by: 1)))
        try c.flush()
        try db.close()
        let file = try XCTUnwrap(try entry(dir.path).deletedFile)
        let path = dir.path + "/collections/c/segments/" + file
        var padded = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        padded += [UInt8](repeating: 0, count: 1 << 20)
        try Data(padded).write(to: URL(fileURLWithPath: path))
        let oversized = try Database(path: dir.path)
        XCTAssertThrowsError(try oversized.collection("c")) { e in
            guard case .corrupt(let f, _, let reason)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(f.hasSuffix(file) && reason.contains("more than"), "\(f): \(reason)")
        }
        try oversized.close()

        let storage = try StorageLocation.directory(dir.path).open(create: false)
        var manifest = try Manifest.decode(try XCTUnwrap(try storage.readManifest()), file: "MANIFEST")
        let s = try XCTUnwrap(manifest.collections[0].segments.firstIndex { $0.rows == 500 })
        manifest.collections[0].segments[s].deletedFile = "../../MANIFEST.del"
        try storage.swapManifest(try manifest.encoded())
        let hostile = try Database(path: dir.path)
        XCTAssertThrowsError(try hostile.collection("c")) { e in
            guard case .corrupt(_, _, let reason)? = e as? TidepoolError else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("is not one"), reason)
        }
        try hostile.close()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "nothing is deleted")
    }

    func testOnObjectStorageAReplacedFileIsRetiredAndAQueryNodeReadsTheDeletions() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try ObjectStorageTests.Node(store), try ObjectStorageTests.Node(store))
        let writer = try w.open()
        let c = try writer.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<500))
        try c.flush()
        _ = try c.delete(ids: ids(stride(from: 0, to: 40, by: 1)))
        try c.flush()
        let reader = try r.open(readOnly: true)
        XCTAssertEqual(try reader.collection("c").count, 460)
        let firstKeys = store.keys.filter { $0.hasSuffix(".del") }
        XCTAssertEqual(firstKeys.count, 1)

        _ = try c.delete(ids: ids(stride(from: 40, to: 80, by: 1)))
        try c.flush()
        XCTAssertTrue(store.keys.contains(firstKeys[0]), "kept for readers of older manifest versions")
        try reader.catchUp()
        XCTAssertEqual(try reader.collection("c").count, 420)
        XCTAssertEqual(try reader.collection("c").get(ids: ids(stride(from: 0, to: 80, by: 1))).count, 0)
        try reader.close()
        try writer.close()
        // A restarted writer takes the retired file for garbage with a grace period, not an orphan.
        let third = try ObjectStorageTests.Node(store)
        let again = try third.open()
        XCTAssertEqual(try again.collection("c").count, 420)
        XCTAssertTrue(store.keys.contains(firstKeys[0]))
        try again.close()
    }

    /// A flush whose manifest commit failed is retried, and writes its deleted-rows file again
    /// under a new name: meeting its own earlier upload would read as another writer's.
    func testAFlushRetriedAfterAFailedManifestCommitIsNotFenced() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try ObjectStorageTests.Node(store), try ObjectStorageTests.Node(store))  // each holds its cache
        let writer = try w.open()
        let c = try writer.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(docs(0..<500))
        try c.flush()
        _ = try c.delete(ids: ids(stride(from: 0, to: 40, by: 1)))
        store.injectCreateFault(.unreachable, whereKeyContains: "manifest/")
        XCTAssertThrowsError(try c.flush(), "the manifest commit fails")
        try c.flush()
        XCTAssertEqual(c.health, .ok)
        XCTAssertEqual(c.count, 460)
        let reader = try r.open(readOnly: true)
        XCTAssertEqual(try reader.collection("c").count, 460)
        try reader.close()
        try writer.close()
    }
}
