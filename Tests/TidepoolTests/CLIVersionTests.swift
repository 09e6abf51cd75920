import Foundation
import Tidepool
import XCTest

/// `tidepool versions`, `snapshot`, `branch`, `backup` and `restore`, run as real processes.
final class CLIVersionTests: XCTestCase {
    func testVersionsSnapshotBranchBackupAndRestoreFromTheCommandLine() throws {
        let dir = TempDir()
        let data = dir.path + "/db"
        let db = try Database(path: data)
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        try c.upsert(randomDocuments(0..<200, seed: 3))
        try c.flush()
        try c.delete(ids: [.uint(1), .uint(2)])
        try c.flush()
        try db.close()

        let (s1, out1, err1) = try runTidepool(["versions", "--data", data, "--collection", "c", "--json"])
        XCTAssertEqual(s1, 0, err1)
        let listed = try JSONSerialization.jsonObject(with: Data(out1.utf8)) as! [String: Any]
        XCTAssertEqual(listed["version"] as? Int, 2)
        XCTAssertEqual((listed["versions"] as? [[String: Any]])?.compactMap { $0["documents"] as? Int }, [200, 198])

        let (s2, out2, err2) = try runTidepool(["snapshot", "--data", data, "--collection", "c", "--name", "first", "--version", "1"])
        XCTAssertEqual(s2, 0, err2)
        XCTAssertTrue(out2.contains("pins version 1"), out2)
        let (s3, out3, err3) = try runTidepool(["branch", "--data", data, "--collection", "c", "--name", "old", "--version", "1"])
        XCTAssertEqual(s3, 0, err3)
        XCTAssertTrue(out3.contains("0 bytes copied"), out3)

        // A backup while nothing holds the database, then one while a writer has it open.
        let (s4, out4, err4) = try runTidepool(["backup", "--data", data, "--collection", "old", "--to", dir.path + "/bk"])
        XCTAssertEqual(s4, 0, err4)
        XCTAssertTrue(out4.contains("MB/s"), out4)
        let (s5, _, err5) = try runTidepool(["backup", "--data", data, "--collection", "old", "--to", dir.path + "/bk"])
        XCTAssertNotEqual(s5, 0)
        XCTAssertTrue(err5.contains("already"), err5)
        let live = try Database(path: data)
        let (s6, _, err6) = try runTidepool(["backup", "--data", data, "--collection", "c", "--to", dir.path + "/bk2"])
        XCTAssertEqual(s6, 0, "a backup needs no lock: \(err6)")
        try live.close()

        let (s7, out7, err7) = try runTidepool([
            "restore", "--data", dir.path + "/other", "--from", dir.path + "/bk", "--collection", "again",
        ])
        XCTAssertEqual(s7, 0, err7)
        XCTAssertTrue(out7.contains("restored"), out7)
        let (s8, out8, err8) = try runTidepool(["restore", "--data", data, "--collection", "c", "--version", "1"])
        XCTAssertEqual(s8, 0, err8)
        XCTAssertTrue(out8.contains("restored as version 3"), out8)
        let (s9, _, err9) = try runTidepool(["restore", "--data", data, "--collection", "c", "--version", "1", "--from", "x"])
        XCTAssertNotEqual(s9, 0)
        XCTAssertTrue(err9.contains("not both"), err9)

        let check = try Database(path: data)
        XCTAssertEqual(try check.collection("c").count, 200)
        XCTAssertEqual(try check.collection("old").count, 200)
        try check.close()
        let other = try Database(path: dir.path + "/other")
        XCTAssertEqual(try other.collection("again").count, 200)
        try other.close()
        let (sv, outv, _) = try runTidepool(["verify", "--data", data])
        XCTAssertEqual(sv, 0, outv)
    }
}
