import Foundation
import XCTest

@testable import Tidepool

/// `tidepool import` of JSON Lines, CSV and float64 .npy, `tidepool export` and the round trip,
/// and files the importer does not understand. (Parquet and HDF5 go through Python: the client's
/// tests cover them.)
final class CLIImportExportTests: XCTestCase {
    private func write(_ text: String, _ path: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }

    private func documents(_ data: String, _ collection: String) throws -> [DocumentID: Document] {
        let db = try Database(path: data, options: DatabaseOptions(readOnly: true))
        defer { try? db.close() }
        let page = try db.collection(collection).scan(filter: nil, after: nil, limit: 100_000, includeVectors: true)
        return Dictionary(uniqueKeysWithValues: page.documents.map { ($0.id, $0) })
    }

    func testJSONLinesWithEveryKindOfDocument() throws {
        let dir = TempDir()
        let data = dir.path + "/db", file = dir.path + "/docs.jsonl"
        var le: [UInt32] = [Float(0.5).bitPattern, Float(-1).bitPattern, Float(2).bitPattern]
        let b64 = Data(bytes: &le, count: 12).base64EncodedString()
        try write(
            """
            {"id": 1, "vector": [0.1, 0.2, 0.3], "attributes": {"lang": "en", "year": 2020}, "body": "hello world"}
            {"id": "doc-2", "vector_b64": "\(b64)", "tags": ["a", "b"], "score": 0.5}

            {"id": 3, "body": "no vector here", "ok": true}
            {"id": 103, "vector": [1, 2, 3], "year": 2021}
            """, file)
        let (status, out, err) = try runTidepool([
            "import", "--data", data, "--collection", "c", "--metric", "l2", "--text-field", "body", "--first-id", "100", file,
        ])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(out.contains("committed 4"), out)
        let docs = try documents(data, "c")
        XCTAssertEqual(docs.count, 4)
        XCTAssertEqual(docs[.uint(1)]?.vector, [0.1, 0.2, 0.3])
        XCTAssertEqual(docs[.uint(1)]?.attributes, ["lang": .string("en"), "year": .int(2020), "body": .string("hello world")])
        XCTAssertEqual(docs[.string("doc-2")]?.vector, [0.5, -1, 2])
        XCTAssertEqual(docs[.string("doc-2")]?.attributes, ["tags": .stringArray(["a", "b"]), "score": .float(0.5)])
        XCTAssertEqual(docs[.uint(3)]?.vector, [])
        XCTAssertEqual(docs[.uint(3)]?.attributes["ok"], .bool(true))
        XCTAssertEqual(docs[.uint(103)]?.vector, [1, 2, 3])
        // The text field is indexed for BM25 in the new collection.
        let db = try Database(path: data, options: DatabaseOptions(readOnly: true))
        XCTAssertEqual(try db.collection("c").textSearch("vector", k: 5).map(\.id), [.uint(3)])
        try db.close()
    }

    func testCSVColumnsTypedByTheirValues() throws {
        let dir = TempDir()
        let data = dir.path + "/db", file = dir.path + "/rows.csv"
        try write(
            """
            id,vector,price,count,flag,name
            a,"[1, 0]",1,3,true,first
            b,0 1,2.5,4,false,"second, with comma"
            c,,,5,TRUE,
            """, file)
        let (status, _, err) = try runTidepool(["import", "--data", data, "--collection", "c", "--metric", "l2", file])
        XCTAssertEqual(status, 0, err)
        let docs = try documents(data, "c")
        XCTAssertEqual(
            docs[.string("a")]?.attributes, ["price": .float(1), "count": .int(3), "flag": .bool(true), "name": .string("first")])
        XCTAssertEqual(docs[.string("b")]?.vector, [0, 1])
        XCTAssertEqual(docs[.string("b")]?.attributes["name"], .string("second, with comma"))
        XCTAssertEqual(docs[.string("c")]?.vector, [], "an empty vector cell: a document without a vector")
        XCTAssertEqual(docs[.string("c")]?.attributes, ["count": .int(5), "flag": .bool(true)])
    }

    func testFloat64NpyAndExportRoundTrip() throws {
        let dir = TempDir()
        let data = dir.path + "/db", npy = dir.path + "/v.npy", out = dir.path + "/out.jsonl"
        var header = Array("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }".utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0A)
        var bytes = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header)
        for v in [0.1, 0.2, 0.3, 1e-3, -5, 7] as [Double] {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        try bytes.write(to: URL(fileURLWithPath: npy))
        var (status, _, err) = try runTidepool(["import", "--data", data, "--collection", "c", "--metric", "l2", npy])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(try documents(data, "c")[.uint(0)]?.vector, [Float(0.1), Float(0.2)])
        // Add documents of every kind, export, import the export elsewhere: identical.
        do {
            let db = try Database(path: data)
            try db.collection("c").upsert([
                Document(
                    id: .string("s"), vector: [Float.pi, -Float.leastNonzeroMagnitude],
                    attributes: ["t": .stringArray(["x\n\"y"]), "n": .null]),
                Document(id: .uint(9), attributes: ["f": .float(1.5), "b": .bool(false)]),
            ])
            try db.close()
        }
        (status, _, err) = try runTidepool(["export", "--data", data, "--collection", "c", "--to", out])
        XCTAssertEqual(status, 0, err)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 5)
        XCTAssertTrue(lines.contains { $0.contains(#""vector":[0.1,0.2]"#) }, "shortest float32 forms: \(lines)")
        (status, _, err) = try runTidepool(["import", "--data", dir.path + "/copy", "--collection", "c", "--metric", "l2", out])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(try documents(dir.path + "/copy", "c"), try documents(data, "c"))
        // Lines without ids take row numbers plus --first-id.
        try write("{\"vector\": [1, 2]}\n{\"vector\": [3, 4]}\n", dir.path + "/rows.jsonl")
        (status, _, err) = try runTidepool([
            "import", "--data", dir.path + "/rows", "--collection", "c", "--metric", "l2", "--first-id", "100", dir.path + "/rows.jsonl",
        ])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(try documents(dir.path + "/rows", "c")[.uint(101)]?.vector, [3, 4])
        (status, _, err) = try runTidepool([
            "export", "--data", data, "--collection", "c", "--to", dir.path + "/b.jsonl", "--vector-encoding", "base64", "--filter",
            #"{"f": {"exists": true}}"#,
        ])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(
            try String(contentsOfFile: dir.path + "/b.jsonl", encoding: .utf8), #"{"id":9,"attributes":{"b":false,"f":1.5}}"# + "\n")
    }

    func testFilesTheImporterDoesNotUnderstandAreErrorsNamingThem() throws {
        let dir = TempDir()
        let data = dir.path + "/db"
        let cases: [(String, String, String)] = [
            ("notes.txt", "hello", "no known format for the extension '.txt'"),
            ("fake.parquet", "not parquet at all", "is not a parquet file"),
            ("fake.hdf5", "not hdf5", "is not a hdf5 file"),
            ("bad.jsonl", "{\"id\": 1, \"vector\": [1, 2]}\n{\"id\": 2, \"vector\": [1, 2\n", "bad.jsonl line 2"),
            ("empty-vector.jsonl", "{\"id\": 1, \"vector\": []}\n", "empty vector"),
            ("ragged.csv", "id,vector\n1,1 2\n2\n", "row 2"),
            ("noid.csv", "x,vector\n1,1 2\n", "--id-column"),
            ("mixed-ids.jsonl", "{\"id\": 5, \"vector\": [1]}\n{\"vector\": [2]}\n", "mixed-ids.jsonl line 2 has no 'id'"),
        ]
        for (name, text, expected) in cases {
            let path = dir.path + "/" + name
            try write(text, path)
            var args = ["import", "--data", data, "--collection", "c", path]
            if name == "noid.csv" { args.insert(contentsOf: ["--id-column", "key"], at: 1) }
            let (status, _, err) = try runTidepool(args)
            XCTAssertEqual(status, 1, "\(name): \(err)")
            XCTAssertTrue(err.contains(expected), "\(name): \(err)")
        }
        if FileManager.default.fileExists(atPath: data + "/MANIFEST") {
            let db = try Database(path: data, options: DatabaseOptions(readOnly: true))
            XCTAssertEqual(db.collectionNames, [], "a failed import leaves no collection behind")
            try db.close()
        }
    }
}
