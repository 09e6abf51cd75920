import Foundation
import Tidepool
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The `tidepool` command, run as a real process.
final class CLITests: XCTestCase {
    func testImportSearchInspectVerify() throws {
        let dir = TempDir()
        let base = clusteredVectors(3000, 16, clusters: 10, seed: 8)
        let file = dir.path + "/base.fvecs"
        try VectorFile.writeFvecs(VectorMatrix(rows: 3000, dimension: 16, values: base.flatMap { $0 }), to: file)
        let qfile = dir.path + "/q.fvecs"
        try VectorFile.writeFvecs(VectorMatrix(rows: 3, dimension: 16, values: [base[5], base[100], base[2999]].flatMap { $0 }), to: qfile)
        let data = dir.path + "/db"

        let (s1, out1, err1) = try runTidepool([
            "import", "--data", data, "--collection", "c", "--metric", "l2", "--batch-size", "500", file,
        ])
        XCTAssertEqual(s1, 0, err1)
        let committed = out1.split(separator: "\n").filter { $0.hasPrefix("committed ") }
        XCTAssertEqual(committed.first, "committed 500")
        XCTAssertEqual(committed.last, "committed 3000")

        let (s2, out2, err2) = try runTidepool(["search", "--data", data, "--collection", "c", "--query-file", qfile, "--k", "3", "--json"])
        XCTAssertEqual(s2, 0, err2)
        let lines = out2.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        XCTAssertEqual((first["ids"] as! [Int]).first, 5)
        XCTAssertEqual((first["distances"] as! [Double]).first!, 0, accuracy: 1e-6)
        let last = try JSONSerialization.jsonObject(with: Data(lines[2].utf8)) as! [String: Any]
        XCTAssertEqual((last["ids"] as! [Int]).first, 2999)

        let (s3, out3, _) = try runTidepool(["inspect", "--data", data, "--json"])
        XCTAssertEqual(s3, 0)
        let info = try JSONSerialization.jsonObject(with: Data(out3.utf8)) as! [String: Any]
        let cols = info["collections"] as! [[String: Any]]
        XCTAssertEqual(cols.count, 1)
        XCTAssertEqual(cols[0]["name"] as? String, "c")
        XCTAssertEqual(cols[0]["count"] as? Int, 3000)

        let (s4, out4, _) = try runTidepool(["verify", "--data", data])
        XCTAssertEqual(s4, 0, out4)

        // Damage a segment: verify fails and names it.
        let segs = try FileManager.default.contentsOfDirectory(atPath: data + "/collections/c/segments")
        let seg = data + "/collections/c/segments/" + segs[0]
        var b = [UInt8](FileManager.default.contents(atPath: seg)!)
        b[100] ^= 1
        _ = FileManager.default.createFile(atPath: seg, contents: Data(b))
        let (s5, out5, _) = try runTidepool(["verify", "--data", data])
        XCTAssertNotEqual(s5, 0)
        XCTAssertTrue(out5.contains(segs[0]), out5)
        // Bad input to the CLI is a clean error.
        let (s6, _, err6) = try runTidepool(["search", "--data", data, "--collection", "missing", "--query-file", qfile])
        XCTAssertNotEqual(s6, 0)
        XCTAssertTrue(err6.contains("error"), err6)
    }

    /// Imports killed with SIGKILL at random points, each followed by verify, a check of every
    /// committed row's vector, and a re-run of the import (idempotent: same ids), as a user would.
    func testKilledImportKeepsEveryCommittedDocument() throws {
        let kills = Int(ProcessInfo.processInfo.environment["TIDEPOOL_CRASH_IMPORT_KILLS"] ?? "") ?? 2
        let dir = TempDir()
        let n = 40_000
        let base = randomVectors(n, 32, seed: 12)
        let file = dir.path + "/base.fvecs"
        try VectorFile.writeFvecs(VectorMatrix(rows: n, dimension: 32, values: base.flatMap { $0 }), to: file)
        let data = dir.path + "/db"
        var rng = SplitMix64(seed: 44)
        var everCommitted = 0
        for kill in 0..<kills {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try tidepoolBinary())
            p.arguments = ["import", "--data", data, "--collection", "c", "--metric", "l2", "--batch-size", "200", file]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Kill it once it has committed a random amount (the first kill: 4,000 rows).
            let target = kill == 0 ? 4000 : 200 * Int(1 + rng.next() % 150)
            var seen = ""
            let handle = out.fileHandleForReading
            while !seen.contains("committed \(target)\n") {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            Glibc.kill(p.processIdentifier, SIGKILL)
            seen += String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            let lastCommitted =
                seen.split(separator: "\n").compactMap { $0.hasPrefix("committed ") ? Int($0.dropFirst(10)) : nil }.max() ?? 0
            XCTAssertGreaterThanOrEqual(lastCommitted, min(target, n), "kill \(kill)")
            everCommitted = max(everCommitted, lastCommitted)
            XCTAssertEqual(Database.verify(path: data), [], "kill \(kill)")
            let db = try Database(path: data, options: DatabaseOptions(readOnly: true))
            let c = try db.collection("c")
            XCTAssertGreaterThanOrEqual(c.count, everCommitted, "kill \(kill)")
            for id in stride(from: Int(rng.next() % 97), to: everCommitted, by: 97) {
                XCTAssertEqual(try c.get(ids: [.uint(UInt64(id))]).first?.vector, base[id], "kill \(kill): row \(id)")
            }
            try db.close()
        }
        print("import crash test: \(kills) kills, up to \(everCommitted) rows committed, every committed row checked after each")
    }
}
