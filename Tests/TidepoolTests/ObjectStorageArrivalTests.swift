import Foundation
import XCTest

@testable import Tidepool

/// A query node opening an IVF segment from object storage answers once the lists are here,
/// fetching only the codes of the lists it probes and its re-rank candidates' f32 rows; the rest
/// follows in the background, and its checksums are verified once it is all here.
final class ObjectStorageArrivalTests: XCTestCase {
    typealias Node = ObjectStorageTests.Node
    let dim = 64, n = 3000
    lazy var base = clusteredVectors(n, dim, clusters: 40, seed: 7)
    lazy var queries = clusteredVectors(5, dim, clusters: 40, seed: 8)

    /// A writer's collection "c" as one IVF-PQ segment; returns the segment's key.
    func writeIVFCollection(_ store: MemoryObjectStore, _ node: Node, pqSubspaces: Int? = nil) throws -> (Database, String) {
        let db = try node.open()
        let c = try db.createCollection(
            "c", dimension: dim, metric: .l2,
            config: CollectionConfig(
                minRowsForGraph: 1000, quantization: .pq, index: .ivf, ivf: IVFParameters(nlist: 32, pqSubspaces: pqSubspaces)))
        try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0], attributes: ["i": .int(Int64($0))]) })
        try c.flush()
        // One write after the flush: a query node replays only its WAL object, not the flushed one.
        try c.upsert([Document(id: .uint(UInt64(n)), vector: [Float](repeating: 100, count: dim))])
        XCTAssertEqual(c.info().segments.map(\.index), ["ivf"])
        let key = try XCTUnwrap(store.keys.first { $0.hasPrefix("collections/c/segments/") && $0.hasSuffix(".tps") })
        return (db, key)
    }

    func testAnIVFSegmentAnswersBeforeItsRowsArriveAndMatchesTheWriter() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let (writer, key) = try writeIVFCollection(store, w)
        let size = try XCTUnwrap(store.bytes(key)).count
        let options = SearchOptions(nprobe: 8)
        let expected = try queries.map { try writer.collection("c").search(vector: $0, k: 10, options: options) }

        store.holdGets(largerThan: 512 << 10)  // holds back the background download of the rows
        store.resetCounts()
        let reader = try r.open(readOnly: true)
        var c = try reader.collection("c")
        XCTAssertEqual(try c.search(vector: queries[0], k: 10, options: options), expected[0])
        let got = try c.get(ids: [.uint(17), .uint(2999)])
        XCTAssertEqual(got.map(\.vector), [base[17], base[2999]], "a get fetches the rows it returns")
        // The rows are 768 KB of the 1 MB file; one re-rank of 40 candidates fetches 40 pages of them.
        XCTAssertLessThan(store.servedBytes, size / 2, "answered without the f32 rows")
        for (q, want) in zip(queries, expected) { XCTAssertEqual(try c.search(vector: q, k: 10, options: options), want) }
        // A flush on the writer: the node reopens the collection, and the reopened segment shares
        // the copy still arriving (the first one's release does not stop it).
        try writer.collection("c").upsert([Document(id: .uint(UInt64(n + 1)), vector: [Float](repeating: -100, count: dim))])
        try writer.collection("c").flush()
        try reader.catchUp()
        c = try reader.collection("c")
        XCTAssertEqual(c.info().segments.count, 2)
        XCTAssertEqual(try c.search(vector: queries[1], k: 10, options: options), expected[1])

        store.releaseLargeGets()
        try c.prewarm()  // waits for the rest
        XCTAssertTrue(FileManager.default.fileExists(atPath: r.cache.path + "/files/" + key), "a complete copy moved into the cache")
        for (q, want) in zip(queries, expected) { XCTAssertEqual(try c.search(vector: q, k: 10, options: options), want) }
        XCTAssertEqual(try c.search(vector: queries[0], k: 10, options: SearchOptions(exact: true)).count, 10)
        try reader.close()
        try writer.close()
    }

    /// Where the segment file `bytes` keeps its IVF lists' codes.
    func codesRange(_ bytes: [UInt8], key: String) throws -> Range<Int> {
        try bytes.withUnsafeBytes { raw in
            let header = try SegmentHeader.decode(raw, file: key, dimension: dim, metric: .l2)
            let footer = try SegmentFooter.decode(raw, file: key, headerRows: header.rows)
            let ivf = try XCTUnwrap(try SectionEntry.decodeTable(raw, file: key, footer: footer).first { $0.kind == 8 })
            let section = UnsafeRawBufferPointer(rebasing: raw[ivf.offset..<(ivf.offset + ivf.length)])
            let from = try XCTUnwrap(IVFView.bytesBeforeCodes(section: section, dimension: dim))
            return (ivf.offset + from)..<(ivf.offset + ivf.length)
        }
    }

    func testAnIVFSegmentOpensWithoutItsListsCodesAndASearchFetchesTheListsItProbes() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let (writer, key) = try writeIVFCollection(store, w, pqSubspaces: 32)
        let bytes = try XCTUnwrap(store.bytes(key))
        let codes = try codesRange(bytes, key: key)
        // Fetches are whole 4 KiB blocks, and opening reads the file's last 64 KiB (the section
        // table) in one: the codes' first block and those in that tail may come along.
        let block = ArrivingFile.blockSize
        let refused = (codes.lowerBound + block - 1) / block * block..<(bytes.count - Segment.tailBytes) / block * block
        XCTAssertGreaterThan(refused.count, 64 << 10, "the test collection's codes are large enough to tell")
        let options = SearchOptions(nprobe: 4)
        let expected = try queries.map { try writer.collection("c").search(vector: $0, k: 10, options: options) }

        store.holdGets(largerThan: 512 << 10)  // holds back the background download of the rows
        store.refuseGets(of: key, overlapping: refused)
        let reader = try r.open(readOnly: true)
        let c = try reader.collection("c")  // opening fails if it reads any of the refused codes
        XCTAssertEqual(c.info().segments.map(\.index), ["ivf"])
        store.refuseGets(of: key, overlapping: nil)
        for (q, want) in zip(queries, expected) { XCTAssertEqual(try c.search(vector: q, k: 10, options: options), want) }

        store.releaseLargeGets()
        try c.prewarm()  // waits for the rest, and checks the codes' checksum with the rows'
        XCTAssertTrue(FileManager.default.fileExists(atPath: r.cache.path + "/files/" + key), "a complete copy moved into the cache")
        for (q, want) in zip(queries, expected) { XCTAssertEqual(try c.search(vector: q, k: 10, options: options), want) }
        try reader.close()

        // Damaged codes, which arrive after opening, are found by the check once all is here.
        var damaged = bytes
        damaged[codes.lowerBound + codes.count / 2] ^= 0x40
        store.plant(key, damaged)
        let third = try Node(store)
        let other = try third.open(readOnly: true)
        XCTAssertThrowsError(try other.collection("c").prewarm()) { error in
            guard case TidepoolError.corrupt(let file, let offset, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix(key), file)
            XCTAssertLessThan(offset, codes.lowerBound, "the offset of the IVF section that holds the codes")
            XCTAssertTrue(reason.contains("checksum mismatch in section 8"), reason)
        }
        try other.close()
        try writer.close()
    }

    func testDamagedRowsThatArriveLaterAreReportedWithFileAndOffset() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let (writer, key) = try writeIVFCollection(store, w)
        var bytes = try XCTUnwrap(store.bytes(key))
        bytes[SegmentHeader.size + 1000] ^= 0x40  // inside the f32 rows, which follow the header
        store.plant(key, bytes)

        let reader = try r.open(readOnly: true)
        let c = try reader.collection("c")
        XCTAssertThrowsError(try c.prewarm()) { error in
            guard case TidepoolError.corrupt(let file, _, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix(key), file)
            XCTAssertTrue(reason.contains("checksum"), reason)
        }
        XCTAssertThrowsError(try c.search(vector: queries[0], k: 10)) { error in
            guard case TidepoolError.corrupt = error else { return XCTFail("every later read reports it: \(error)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: r.cache.path + "/files/" + key), "a damaged copy is not cached")
        try reader.close()
        try writer.close()
    }

    func testAFailedFetchFailsTheQueryAndTheNextOneFetchesAgain() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let (writer, _) = try writeIVFCollection(store, w)
        let want = try writer.collection("c").search(vector: queries[1], k: 10)
        store.holdGets(largerThan: 512 << 10)
        let reader = try r.open(readOnly: true)
        let c = try reader.collection("c")
        store.failSegmentGets(1)
        XCTAssertThrowsError(try c.search(vector: queries[1], k: 10)) { XCTAssertTrue("\($0)".contains("injected"), "\($0)") }
        XCTAssertEqual(try c.search(vector: queries[1], k: 10), want)
        store.releaseLargeGets()
        try reader.close()
        try writer.close()
    }
}
