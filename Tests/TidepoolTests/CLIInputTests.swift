import Foundation
import XCTest

@testable import Tidepool

/// Malformed input to the `tidepool` command gets a clear error, never a trap, and a failed
/// import leaves nothing behind.
final class CLIInputTests: XCTestCase {
    func npy(_ header: String, body: [Float] = []) -> Data {
        var h = Array(header.utf8)
        while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
        h.append(0x0A)
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h)
        body.withUnsafeBytes { d.append(contentsOf: $0) }
        return d
    }

    func testNpyHeadersAreParsedStrictly() throws {
        XCTAssertEqual(
            try NpyHeader(parsing: "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"),
            NpyHeader(descr: "<f4", fortranOrder: false, shape: [3, 2]))
        XCTAssertEqual(try NpyHeader(parsing: "{'shape': (5,), 'fortran_order': True, 'descr': '<f8'}").shape, [5])
        for bad in [
            "", "{", "{'descr': '<f4'}", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), 'descr': '<f4'}",
            "{'descr': '<f8', 'note': '<f4', 'fortran_order': False, 'shape': (1, 1)}",
            "{'descr': <f4, 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1, 1)}", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -1)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1)}",
        ] {
            XCTAssertThrowsError(try NpyHeader(parsing: bad), bad)
        }
        let huge = try NpyHeader(parsing: "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }")
        XCTAssertNil(huge.elementCount, "the shape product overflows")
    }

    func testMalformedVectorFilesAreClearErrors() throws {
        let dir = TempDir()
        let cases: [(String, Data, String)] = [
            ("overflow.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"), "shorter than shape"),
            ("f8.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3), }", body: [0, 0, 0, 0]), "shorter than shape"),
            ("be.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }", body: [0, 0, 0, 0]), "'>f4'"),
            ("3d.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }", body: [0, 0, 0, 0]), "2-D"),
            ("short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", body: [1, 2]), "shorter than shape"),
        ]
        for (name, bytes, expected) in cases {
            let path = dir.path + "/" + name
            try bytes.write(to: URL(fileURLWithPath: path))
            let (status, _, err) = try runTidepool(["import", "--data", dir.path + "/db", "--collection", "c", path])
            XCTAssertEqual(status, 1, "\(name): \(err)")
            XCTAssertTrue(err.contains(expected), "\(name): \(err)")
        }
        try FileManager.default.createDirectory(atPath: dir.path + "/adir.npy", withIntermediateDirectories: false)
        mkfifo(dir.path + "/fifo.fvecs", 0o600)
        for (name, expected) in [("adir.npy", "is a directory"), ("fifo.fvecs", "not a regular file"), ("missing.fvecs", "No such file")] {
            let (status, _, err) = try runTidepool(["import", "--data", dir.path + "/db", "--collection", "c", dir.path + "/" + name])
            XCTAssertEqual(status, 1, "\(name): \(err)")
            XCTAssertTrue(err.contains(expected), "\(name): \(err)")
        }
    }

    func testFirstIdNearTheTopAndFailedImportsLeaveNothing() throws {
        let dir = TempDir()
        let data = dir.path + "/db"
        let two = dir.path + "/two.fvecs"
        try VectorFile.writeFvecs(VectorMatrix(rows: 2, dimension: 2, values: [1, 0, 0, 1]), to: two)
        var (status, _, err) = try runTidepool(["import", "--data", data, "--collection", "c", "--first-id", "18446744073709551615", two])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(err.contains("no room"), err)
        (status, _, err) = try runTidepool([
            "import", "--data", data, "--collection", "c", "--metric", "l2", "--first-id", "18446744073709551614", two,
        ])
        XCTAssertEqual(status, 0, err)
        let db = try Database(path: data, options: DatabaseOptions(readOnly: true))
        XCTAssertEqual(try db.collection("c").get(ids: [.uint(.max)]).count, 1)
        try db.close()

        // Vectors the engine refuses: the import fails and the collection it created is gone.
        let bad = dir.path + "/nan.fvecs"
        try VectorFile.writeFvecs(VectorMatrix(rows: 2, dimension: 2, values: [1, .nan, 0, 1]), to: bad)
        (status, _, err) = try runTidepool(["import", "--data", data, "--collection", "fresh", bad])
        XCTAssertEqual(status, 1, err)
        let after = try Database(path: data, options: DatabaseOptions(readOnly: true))
        XCTAssertEqual(after.collectionNames, ["c"], "a failed import left a collection behind")
        try after.close()
    }
}
