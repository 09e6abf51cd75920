import Foundation
import Logging
import XCTest

@testable import Tidepool

final class StorageTests: XCTestCase {
    let logger = Logger(label: "test")

    func testTopKKeepsTheSmallestAndHeapsOrder() {
        var rng = SplitMix64(seed: 11)
        for trial in 0..<50 {
            let n = Int(rng.next() % 500) + 1, k = Int(rng.next() % 20) + 1
            let values = (0..<n).map { _ in Float(rng.next() % 50) / 7 }  // many ties
            var top = TopK(k: k)
            for (i, v) in values.enumerated() { top.push(v, UInt64(i)) }
            let expected = values.enumerated().sorted { $0.element != $1.element ? $0.element < $1.element : $0.offset < $1.offset }.prefix(
                k)
            // Exactly the first k by (distance, key), ties included, whatever the arrival order.
            XCTAssertEqual(top.sorted().map(\.dist), expected.map(\.element), "trial \(trial)")
            XCTAssertEqual(top.sorted().map(\.key), expected.map { UInt64($0.offset) }, "trial \(trial)")
        }
        let store = UnsafeMutablePointer<Neighbor>.allocate(capacity: 300)
        defer { store.deallocate() }
        var minHeap = MinHeap(storage: store, capacity: 300)
        let vals = (0..<300).map { _ in Float(rng.next() % 10_000) }
        for (i, v) in vals.enumerated() { minHeap.push(Neighbor(dist: v, id: UInt32(i))) }
        var popped: [Float] = []
        while !minHeap.isEmpty { popped.append(minHeap.pop().dist) }
        XCTAssertEqual(popped, vals.sorted())
    }

    func testWALRoundTripAndGroupCommitOrder() throws {
        let dir = TempDir()
        let storage = try LocalStorage(root: dir.path)
        let wal = try WriteAheadLog(
            storage: storage, folder: "wal", dimension: 3, collection: "c", policy: .always,
            syncInterval: 0.05, lastSeq: 0)
        let applied = Locked<[UInt64]>([])
        wal.apply = { batch in applied.withLock { $0 += batch.map(\.seq) } }
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<25 {
                _ = try? wal.commit(
                    .upsert([
                        Document(
                            id: .uint(UInt64(t * 100 + i)), vector: [Float(t), Float(i), 1],
                            attributes: ["t": .int(Int64(t))])
                    ]))
            }
        }
        try wal.commit(.delete([.string("gone")]))
        try wal.close()
        // Applied in sequence order, each exactly once.
        XCTAssertEqual(applied.withLock { $0 }, Array(1...201))
        var seen: [UInt64] = []
        var docs = 0, deletes = 0
        let last = try WriteAheadLog.replay(storage: storage, folder: "wal", dimension: 3, afterSeq: 0, logger: logger) { seq, op in
            seen.append(seq)
            switch op {
            case .upsert(let d): docs += d.count; XCTAssertEqual(d[0].attributes["t"], .int(Int64(d[0].vector[0])))
            case .delete(let ids): deletes += ids.count; XCTAssertEqual(ids, [.string("gone")])
            }
        }
        XCTAssertEqual(last, 201)
        XCTAssertEqual(seen, Array(1...201))
        XCTAssertEqual(docs, 200)
        XCTAssertEqual(deletes, 1)
        // Replay after a flushed sequence skips what is already in segments.
        var after: [UInt64] = []
        _ = try WriteAheadLog.replay(storage: storage, folder: "wal", dimension: 3, afterSeq: 150, logger: logger) { s, _ in after.append(s)
        }
        XCTAssertEqual(after, Array(151...201))
    }

    private func writeLog(_ dir: TempDir, ops: Int) throws -> (LocalStorage, String) {
        let storage = try LocalStorage(root: dir.path)
        let wal = try WriteAheadLog(
            storage: storage, folder: "wal", dimension: 2, collection: "c", policy: .none,
            syncInterval: 1, lastSeq: 0)
        for i in 0..<ops { try wal.commit(.upsert([Document(id: .uint(UInt64(i)), vector: [1, Float(i)])])) }
        try wal.close()
        return (storage, try storage.list("wal")[0])
    }

    func testTornTailIsTruncatedAndPrefixKept() throws {
        for cut in [1, 5, 9, 20] {
            let dir = TempDir()
            let (storage, file) = try writeLog(dir, ops: 10)
            let size = try storage.size(of: "wal/" + file)
            try storage.truncate("wal/" + file, to: size - cut)
            var seqs: [UInt64] = []
            _ = try WriteAheadLog.replay(storage: storage, folder: "wal", dimension: 2, afterSeq: 0, logger: logger) { s, _ in
                seqs.append(s)
            }
            XCTAssertEqual(seqs, Array(1...9), "cut \(cut)")
            XCTAssertLessThan(try storage.size(of: "wal/" + file), size - cut + 1)
        }
    }

    /// Only an unfinished final write is cut. A bad frame that valid frames follow (in the last
    /// file too) is damage: an error naming the file and the bad frame's offset, nothing cut.
    func testADamagedFrameIsCutOnlyWhenNothingValidFollowsIt() throws {
        func damaged(frame: Int, extraFile: Bool) throws -> (LocalStorage, String, Int, [UInt8], TempDir) {
            let dir = TempDir("frame\(frame)\(extraFile)")
            let (storage, file) = try writeLog(dir, ops: 10)
            let path = storage.path("wal/" + file)
            var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
            let frameSize = (bytes.count - WALFileHeader.size) / 10
            bytes[WALFileHeader.size + frameSize * frame + 20] ^= 0x40  // inside the frame's body
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            if extraFile {
                FileManager.default.createFile(
                    atPath: storage.path("wal/" + WALFormat.fileName(firstSeq: 11)),
                    contents: Data(WALFileHeader(dimension: 2, firstSeq: 11).encoded()))
            }
            return (storage, path, WALFileHeader.size + frameSize * frame, bytes, dir)
        }
        // The final frame damaged, nothing after it: a torn write, cut.
        let (s1, p1, at1, _, d1) = try damaged(frame: 9, extraFile: false)
        var seqs: [UInt64] = []
        _ = try WriteAheadLog.replay(storage: s1, folder: "wal", dimension: 2, afterSeq: 0, logger: logger) { s, _ in seqs.append(s) }
        XCTAssertEqual(seqs, Array(1...9))
        XCTAssertEqual(try s1.size(of: "wal/" + URL(fileURLWithPath: p1).lastPathComponent), at1)
        _ = d1
        // Frame 7 of 10 damaged: frames 8-10 follow, acknowledged; refused, in the last file as in an earlier one.
        for extraFile in [false, true] {
            let (s, p, at, bytes, d) = try damaged(frame: 6, extraFile: extraFile)
            for readOnly in [true, false] {
                XCTAssertThrowsError(
                    try WriteAheadLog.replay(storage: s, folder: "wal", dimension: 2, afterSeq: 0, readOnly: readOnly, logger: logger) {
                        _, _ in
                    }
                ) { e in
                    guard case .corrupt(let f, let off, _) = e as? TidepoolError else { return XCTFail("\(e)") }
                    XCTAssertEqual(f, p)
                    XCTAssertEqual(off, at)
                }
                XCTAssertEqual([UInt8](FileManager.default.contents(atPath: p)!), bytes, "nothing was cut")
            }
            _ = d
        }
    }

    /// Sequence numbers run on without a gap: a missing middle file is damage.
    func testAMissingWALFileIsDamage() throws {
        let dir = TempDir()
        let storage = try LocalStorage(root: dir.path)
        let wal = try WriteAheadLog(
            storage: storage, folder: "wal", dimension: 2, collection: "c", policy: .none, syncInterval: 1, lastSeq: 0)
        for i in 0..<30 {
            if i % 10 == 0 { wal.requestRotation() }
            try wal.commit(.upsert([Document(id: .uint(UInt64(i)), vector: [1, Float(i)])]))
        }
        try wal.close()
        let files = try storage.list("wal")
        XCTAssertEqual(files.count, 3)
        try storage.delete("wal/" + files[1])
        XCTAssertThrowsError(
            try WriteAheadLog.replay(storage: storage, folder: "wal", dimension: 2, afterSeq: 0, logger: logger) { _, _ in }
        ) { e in
            XCTAssertTrue("\(e)".contains("missing"), "\(e)")
            XCTAssertTrue("\(e)".contains(files[2]), "names the file after the gap: \(e)")
        }
        // A log that starts past the flushed sequence number (its first file lost) is damage too.
        try storage.delete("wal/" + files[0])
        XCTAssertThrowsError(
            try WriteAheadLog.replay(storage: storage, folder: "wal", dimension: 2, afterSeq: 5, logger: logger) { _, _ in })
    }

    func testSegmentRoundTrip() throws {
        let dir = TempDir()
        let storage = try LocalStorage(root: dir.path)
        let n = 700, dim = 10
        let vectors = randomVectors(n, dim, seed: 4).flatMap { $0 }
        let ids: [DocumentID] = (0..<n).map { $0 % 3 == 0 ? .string("doc-\($0)") : .uint(UInt64($0) * 1_000_000_007) }
        let attrs: [[String: AttributeValue]] = (0..<n).map { $0 % 2 == 0 ? [:] : ["k": .int(Int64($0)), "s": .stringArray(["x\($0)"])] }
        try vectors.withUnsafeBufferPointer { vp in
            let contents = SegmentContents(
                dimension: dim, metric: .l2, rowCount: n, vectors: vp.baseAddress!, ids: ids,
                attributes: attrs, maxSeq: 42)
            let builder = try HNSWBuilder(
                vectors: vp.baseAddress!, count: n, dimension: dim, metric: .l2, parameters: HNSWParameters(m: 8, efConstruction: 40))
            builder.build(threads: 2)
            _ = try builder.stored().withUnsafeBytes { try SegmentWriter.write(contents, graph: $0, to: "s.tps", storage: storage) }
        }
        let seg = try Segment(id: 1, name: "s.tps", storage: storage, dimension: dim, metric: .l2, verifyChecksums: true)
        XCTAssertEqual(seg.rowCount, n)
        XCTAssertEqual(seg.maxSeq, 42)
        XCTAssertNotNil(seg.graph)
        for r in [0, 1, 2, 3, 350, 699] {
            XCTAssertEqual(try seg.documentID(r), ids[r])
            XCTAssertEqual(try seg.attributes(r), attrs[r])
            XCTAssertEqual(try seg.vectorArray(r), Array(vectors[(r * dim)..<((r + 1) * dim)]))
            XCTAssertEqual(Int(bitPattern: seg.vector(r)) % 4, 0)
        }
        XCTAssertEqual(Int(bitPattern: seg.vectors) % 64, 0, "vector block is 64-byte aligned")
        XCTAssertThrowsError(try Segment(id: 1, name: "s.tps", storage: storage, dimension: 11, metric: .l2, verifyChecksums: true))
    }

    /// Graph segments store rows in cluster order (the graph renumbered with them): through a
    /// flush that reuses the memtable's graph with dead rows in it, later replacements, a
    /// compaction that rebuilds the graph, and a reopen, every document keeps its own vector and
    /// attributes, deletions stay deleted, and each vector still finds itself through the graph.
    func testClusterRowOrderKeepsEveryDocumentWhole() throws {
        let dir = TempDir()
        let n = 6000, dim = 24
        let base = clusteredVectors(n, dim, clusters: 40, seed: 31)
        let dropped = Set(stride(from: 0, to: n, by: 53))  // deleted before the flush (under 10%: the graph is reused)
        let moved = Set(stride(from: 1, to: n, by: 29)).subtracting(dropped)  // replaced after the flush
        func vector(_ i: Int) -> [Float] { moved.contains(i) ? base[(i + 7) % n].map { $0 + 0.25 } : base[i] }
        func check(_ c: Collection, _ when: String) throws {
            XCTAssertEqual(c.count, n - dropped.count, when)
            let all = try c.get(ids: (0..<n).map { .uint(UInt64($0)) })
            XCTAssertEqual(all.count, n - dropped.count, when)
            for d in all {
                guard case .uint(let v) = d.id else { return XCTFail("\(when): id \(d.id)") }
                let i = Int(v)
                XCTAssertFalse(dropped.contains(i), when)
                XCTAssertEqual(d.vector, vector(i), "\(when): document \(i)'s vector")
                XCTAssertEqual(d.attributes["i"], .int(Int64(i)), when)
                XCTAssertEqual(d.attributes["moved"], .bool(moved.contains(i)), when)
            }
            var found = 0, asked = 0
            for i in stride(from: 2, to: n, by: 97) where !dropped.contains(i) && !moved.contains(i) {
                asked += 1
                let hit = try c.search(vector: base[i], k: 1).first
                if hit?.id == .uint(UInt64(i)) { found += 1 }
            }
            XCTAssertGreaterThanOrEqual(found, asked - 1, "\(when): vectors find themselves through the graph")
        }
        // Two build threads: a parallel build strands a few nodes (how many varies run to run),
        // which writing the segment links back in.
        let options = DatabaseOptions(buildThreads: 2)
        do {
            let db = try Database(path: dir.path, options: options)
            let c = try db.createCollection("v", dimension: dim, metric: .l2, config: CollectionConfig(minRowsForGraph: 1000))
            try c.upsert(
                (0..<n).map {
                    Document(id: .uint(UInt64($0)), vector: base[$0], attributes: ["i": .int(Int64($0)), "moved": .bool(false)])
                })
            try c.delete(ids: dropped.map { .uint(UInt64($0)) })
            try c.flush()
            XCTAssertEqual(c.info().segments.count, 1)
            XCTAssertTrue(c.info().segments[0].hasGraph)
            try c.upsert(
                moved.map { Document(id: .uint(UInt64($0)), vector: vector($0), attributes: ["i": .int(Int64($0)), "moved": .bool(true)]) })
            try c.flush()
            try check(c, "after flushes")
            try c.compact()
            XCTAssertEqual(c.info().segments.count, 1)
            try check(c, "after compaction")
            try db.close()
        }
        let db = try Database(path: dir.path, options: options)
        let c = try db.collection("v")
        try check(c, "after reopen")
        // The segment's rows are not in id order (they were inserted in id order).
        let seg = try XCTUnwrap(c.info().segments.first)
        let storage = try LocalStorage(root: dir.path)
        let segment = try Segment(
            id: seg.id, name: "collections/v/segments/" + SegmentFormat.fileName(id: seg.id), storage: storage,
            dimension: dim, metric: .l2, verifyChecksums: true)
        let stored = try (0..<segment.rowCount).map { r -> UInt64 in
            guard case .uint(let v) = try segment.documentID(r) else { throw TidepoolError.invalidArgument("id") }
            return v
        }
        XCTAssertEqual(Set(stored).count, segment.rowCount)
        XCTAssertNotEqual(stored, stored.sorted(), "rows renumbered in cluster order")
        // The compaction rebuilt the graph from rows read back in cluster order (the build
        // shuffles them: inserted cluster by cluster HNSW strands more nodes); every node but
        // the entry point is linked from some level-0 list.
        let g = try XCTUnwrap(segment.graph)
        var inLinks = [Int](repeating: 0, count: g.count)
        for v in 0..<g.count { for e in g.level0IDs(UInt32(v)) { inLinks[Int(e)] += 1 } }
        let stranded = (0..<g.count).filter { inLinks[$0] == 0 && $0 != Int(g.entryPoint) }
        XCTAssertEqual(stranded, [], "nodes no level-0 list links to")
        try db.close()
    }

    func testManifestRoundTripAndDamageDetected() throws {
        var m = Manifest()
        m.generation = 7
        m.collections = [
            Manifest.CollectionEntry(
                name: "a", dimension: 3, metric: .cosine, config: CollectionConfig(), flushedSeq: 9,
                nextSegmentID: 4, segments: [.init(id: 3, file: "000000000003.tps", rows: 10, bytes: 999, deleted: [1, 5])])
        ]
        let bytes = try m.encoded()
        XCTAssertEqual(try Manifest.decode(bytes, file: "M"), m)
        for i in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 40)) {
            var b = bytes
            b[i] ^= 0x01
            XCTAssertThrowsError(try Manifest.decode(b, file: "M"), "flip at \(i)") { e in
                guard case .corrupt(let f, _, _) = e as? TidepoolError else { return XCTFail("\(e)") }
                XCTAssertEqual(f, "M")
            }
        }
        XCTAssertThrowsError(try Manifest.decode(Array(bytes.prefix(bytes.count - 3)), file: "M"))
    }

    func testManifestSwapIsAtomicAgainstLeftoverTemp() throws {
        let dir = TempDir()
        let storage = try LocalStorage(root: dir.path)
        var m = Manifest()
        m.generation = 1
        try storage.swapManifest(try m.encoded())
        // A crash while writing the next one leaves only a partial temp file: the old manifest stands.
        FileManager.default.createFile(atPath: storage.path("MANIFEST.tmp"), contents: Data([1, 2, 3]))
        XCTAssertEqual(try Manifest.decode(try storage.readManifest()!, file: "MANIFEST").generation, 1)
        m.generation = 2
        try storage.swapManifest(try m.encoded())
        XCTAssertEqual(try Manifest.decode(try storage.readManifest()!, file: "MANIFEST").generation, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storage.path("MANIFEST.tmp")))
    }
}
