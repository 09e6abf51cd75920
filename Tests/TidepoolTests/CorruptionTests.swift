import Foundation
import Tidepool
import XCTest

/// Flips and truncates bytes in the WAL, segment and manifest files. Opening must give a clear
/// error naming the file, or recover an intact prefix; never crash, never return wrong data.
final class CorruptionTests: XCTestCase {
    let dim = 6
    lazy var vectors = randomVectors(1200, dim, seed: 77)

    /// A database with one flushed segment (with a graph), tombstones, and a WAL tail.
    func makeDatabase(_ dir: TempDir) throws {
        let db = try Database(path: dir.path)
        let c = try db.createCollection(
            "c", dimension: dim, metric: .l2,
            config: CollectionConfig(
                minRowsForGraph: 100, text: TextIndexConfig(fields: ["t"])))
        try c.upsert(
            (0..<1000).map {
                Document(
                    id: .uint(UInt64($0)), vector: vectors[$0],
                    attributes: ["i": .int(Int64($0)), "t": .string("word\($0 % 50) common")])
            })
        try c.delete(ids: [3, 4, 5])
        try c.flush()
        for start in stride(from: 1000, to: 1200, by: 20) {
            try c.upsert((start..<(start + 20)).map { Document(id: .uint(UInt64($0)), vector: vectors[$0]) })
        }
        try db.close()
    }

    /// Opens `dir`; if it opens, every document it returns must be exactly what was written.
    func checkOpensCleanlyOrFailsClearly(_ dir: String, damaged file: String, expectLoss: Bool, _ context: String) {
        do {
            let db = try Database(path: dir)
            defer { try? db.close() }
            let c = try db.collection("c")
            let docs = try c.get(ids: (0..<1200).map { .uint(UInt64($0)) })
            for d in docs {
                guard case .uint(let id) = d.id else { return XCTFail("unexpected id \(d.id)") }
                XCTAssertEqual(d.vector, vectors[Int(id)], "\(context): wrong vector for \(id)")
                XCTAssertFalse([3, 4, 5].contains(id), "\(context): deleted id \(id) came back")
            }
            if !expectLoss { XCTAssertEqual(docs.count, 1197, "\(context): documents silently lost") }
            let hits = try c.search(vector: vectors[10], k: 5)
            XCTAssertFalse(hits.isEmpty)
            // Text results name only live documents whose text has the word.
            for h in try c.textSearch("word7", k: 50) {
                guard case .uint(let id) = h.id else { return XCTFail() }
                XCTAssertEqual(id % 50, 7, "\(context): wrong text hit \(id)")
            }
        } catch let e as TidepoolError {
            guard case .corrupt(let f, _, let reason) = e else { return XCTFail("\(context): unexpected error \(e)") }
            XCTAssertTrue(f.hasSuffix(file), "\(context): error names \(f), not \(file) (\(reason))")
        } catch {
            XCTFail("\(context): non-Tidepool error \(error)")
        }
    }

    func copy(_ from: String) -> TempDir {
        let t = TempDir("copy")
        try? FileManager.default.removeItem(atPath: t.path)
        try! FileManager.default.copyItem(atPath: from, toPath: t.path)
        try? FileManager.default.removeItem(atPath: t.path + "/LOCK")
        return t
    }

    func files(_ dir: String) throws -> [(String, String)] {
        let seg = try FileManager.default.contentsOfDirectory(atPath: dir + "/collections/c/segments").sorted()
        let wal = try FileManager.default.contentsOfDirectory(atPath: dir + "/collections/c/wal").sorted()
        return [("MANIFEST", "MANIFEST"), ("segment", "collections/c/segments/" + seg[0]), ("wal", "collections/c/wal/" + wal.last!)]
    }

    func testByteFlipsAreDetectedOrHarmless() throws {
        let original = TempDir()
        try makeDatabase(original)
        var rng = SplitMix64(seed: 5)
        for (kind, rel) in try files(original.path) {
            let size = try FileManager.default.attributesOfItem(atPath: original.path + "/" + rel)[.size] as! Int
            var positions = [0, 8, 12, 20, 28, 40, 60, 63, 64, size / 2, size - 1, size - 9, size - 20, size - 33]
            for _ in 0..<14 { positions.append(Int(rng.next() % UInt64(size))) }
            for pos in positions where pos >= 0 && pos < size {
                let d = copy(original.path)
                let path = d.path + "/" + rel
                var b = [UInt8](FileManager.default.contents(atPath: path)!)
                b[pos] ^= UInt8(1 << (rng.next() % 8))
                _ = FileManager.default.createFile(atPath: path, contents: Data(b))
                checkOpensCleanlyOrFailsClearly(d.path, damaged: rel, expectLoss: kind == "wal", "\(kind) flip at \(pos)")
            }
        }
    }

    func testTruncationsAreDetectedOrRecoverThePrefix() throws {
        let original = TempDir()
        try makeDatabase(original)
        for (kind, rel) in try files(original.path) {
            let size = try FileManager.default.attributesOfItem(atPath: original.path + "/" + rel)[.size] as! Int
            for keep in [0, 10, 31, 64, size / 3, size - 1] where keep < size {
                let d = copy(original.path)
                let path = d.path + "/" + rel
                let b = [UInt8](FileManager.default.contents(atPath: path)!)
                _ = FileManager.default.createFile(atPath: path, contents: Data(b.prefix(keep)))
                checkOpensCleanlyOrFailsClearly(d.path, damaged: rel, expectLoss: kind == "wal", "\(kind) truncated to \(keep)")
            }
        }
    }

    func testVerifyReportsDamageWithFileAndOffset() throws {
        let dir = TempDir()
        try makeDatabase(dir)
        XCTAssertEqual(Database.verify(path: dir.path), [])
        let rel = try files(dir.path)[1].1
        let path = dir.path + "/" + rel
        var b = [UInt8](FileManager.default.contents(atPath: path)!)
        b[200] ^= 0xFF  // inside the vector section
        _ = FileManager.default.createFile(atPath: path, contents: Data(b))
        let problems = Database.verify(path: dir.path)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].contains(rel) && problems[0].contains("offset"), problems.joined())
    }
}
