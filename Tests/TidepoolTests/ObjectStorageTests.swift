import Foundation
import XCTest

@testable import Tidepool

/// The engine on object storage, over the in-memory object store: writes durable once they are
/// objects, a fresh node sees them, idling costs nothing, unknown outcomes are resolved by the
/// commit token, and a second writer is fenced without losing an acknowledged write.
final class ObjectStorageTests: XCTestCase {
    /// A node: its own cache directory over the shared store.
    final class Node {
        let cache = TempDir("object-cache")
        let storage: ObjectStorage
        let retention: VersionRetention
        init(
            _ store: MemoryObjectStore, capacity: Int = 1 << 30, advertisedURL: String? = nil, garbageGrace: Duration = .seconds(600),
            retention: VersionRetention = VersionRetention()
        ) throws {
            self.retention = retention
            storage = ObjectStorage(
                store: store, cache: try ObjectFileCache(root: cache.path, capacity: capacity, location: store.location),
                advertisedURL: advertisedURL, garbageGrace: garbageGrace)
        }
        func open(readOnly: Bool = false) throws -> Database {
            var options = DatabaseOptions(versionRetention: retention)
            options.readOnly = readOnly
            return try Database(storage: storage, path: storage.location, options: options)
        }
    }

    func docs(_ ids: Range<Int>, seed: UInt64 = 1) -> [Document] {
        let v = randomVectors(ids.upperBound, 8, seed: seed)
        return ids.map { Document(id: .uint(UInt64($0)), vector: v[$0], attributes: ["i": .int(Int64($0))]) }
    }

    func testAcknowledgedWritesAreObjectsAndAFreshNodeSeesThem() throws {
        let store = MemoryObjectStore()
        let writer = try Node(store)
        let db = try writer.open()
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        for start in stride(from: 0, to: 500, by: 50) { try c.upsert(docs(start..<(start + 50))) }
        try c.flush()
        try c.upsert(docs(500..<600))
        XCTAssertEqual(try c.delete(ids: (0..<10).map { .uint(UInt64($0)) }), 10)
        XCTAssertTrue(store.keys.contains { $0.hasPrefix("manifest/") })
        XCTAssertTrue(store.keys.contains { $0.hasPrefix("collections/c/segments/") && $0.hasSuffix(".tps") })
        XCTAssertTrue(store.keys.contains { $0.hasPrefix("collections/c/wal/") })

        // A node with an empty cache, while the writer is still running (nothing was closed).
        let reader = try Node(store)
        let rdb = try reader.open(readOnly: true)
        let rc = try rdb.collection("c")
        XCTAssertEqual(rc.count, 590)
        let all = docs(0..<600)
        let got = try rc.get(ids: (0..<600).map { .uint(UInt64($0)) })
        XCTAssertEqual(got.count, 590)
        for d in got {
            guard case .uint(let i) = d.id else { return XCTFail("id kind") }
            XCTAssertGreaterThanOrEqual(i, 10, "a deleted document came back")
            XCTAssertEqual(d.vector, all[Int(i)].vector)
        }
        let q = all[77].vector
        XCTAssertEqual(
            try rc.search(vector: q, k: 10, options: SearchOptions(exact: true)).map(\.id),
            try c.search(vector: q, k: 10, options: SearchOptions(exact: true)).map(\.id))
        XCTAssertGreaterThan(reader.storage.cache.snapshot.misses, 0, "the segment came through the cache")
        try rdb.close()
        try db.close()
    }

    func testOpeningAndIdlingWriteNothingAndListNothing() throws {
        let store = MemoryObjectStore()
        do {
            let node = try Node(store)
            let db = try node.open()
            try db.createCollection("c", dimension: 8, metric: .l2).upsert(docs(0..<20))
            try db.close()
        }
        let node = try Node(store)
        let db = try node.open()
        let c = try db.collection("c")
        XCTAssertEqual(c.count, 20)
        store.resetCounts()
        Thread.sleep(forTimeInterval: 1.5)
        _ = try c.search(vector: docs(0..<1)[0].vector, k: 5)
        XCTAssertEqual(store.count("PUT if absent", "PUT", "DELETE", "LIST"), 0, "an idle collection costs no write and no listing")
        try c.upsert(docs(20..<21))
        XCTAssertEqual(store.count("PUT if absent"), 1, "one write is one object")
        store.resetCounts()
        XCTAssertGreaterThan(c.info().walBytes, 0)
        XCTAssertEqual(store.count("LIST"), 1, "the WAL's size is one listing")
        XCTAssertEqual(store.count("HEAD", "GET"), 0, "not a request per WAL object")
        try db.close()
    }

    func testANodeStartsOnTheNewestManifestInOneListingEvenWhenTheListingLags() throws {
        let store = MemoryObjectStore()
        let writerNode = try Node(store)
        let writer = try writerNode.open()
        try writer.createCollection("c", dimension: 8, metric: .l2).upsert(docs(0..<20))
        try writer.createCollection("d", dimension: 8, metric: .l2)
        let versions = store.keys.filter { $0.hasPrefix("manifest/") }.sorted()
        XCTAssertGreaterThanOrEqual(versions.count, 2)

        store.resetCounts()
        let node = try Node(store)
        var reader = try node.open(readOnly: true)
        XCTAssertEqual(store.count("LIST"), 1, "one listing of the manifest versions")
        XCTAssertEqual(store.count("GET"), 1, "the newest version, fetched alongside the probe of the next number")
        XCTAssertEqual(store.count("HEAD"), 1)
        XCTAssertEqual(reader.collectionNames.sorted(), ["c", "d"])
        try reader.close()

        // A listing that has not caught up with the two newest versions: the probes find them.
        store.unlisted = Set(versions.suffix(2))
        reader = try node.open(readOnly: true)
        XCTAssertEqual(reader.collectionNames.sorted(), ["c", "d"], "the newest version, not the newest listed")
        XCTAssertEqual(try reader.collection("c").count, 20)
        try reader.close()
        try writer.close()
    }

    func testUnknownOutcomesAreResolvedByTheCommitToken() throws {
        let store = MemoryObjectStore()
        let node = try Node(store)
        let db = try node.open()
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        store.injectCreateFault(.appliedButLost, whereKeyContains: "/wal/")
        try c.upsert(docs(0..<5))
        store.injectCreateFault(.lost, whereKeyContains: "/wal/")
        try c.upsert(docs(5..<10))
        XCTAssertEqual(c.count, 10)
        let freshNode = try Node(store)
        let fresh = try freshNode.open(readOnly: true)
        XCTAssertEqual(try fresh.collection("c").count, 10, "both writes are there exactly once")
        try fresh.close()
        try db.close()
    }

    /// A WAL write that failed with its outcome unknown (the store went away after applying it,
    /// or before): the next write looks the object up, applies it if it was created, reuses its
    /// sequence numbers if not, and memory always equals what a fresh node reads from the log.
    func testAWriteThatFailedWithAnUnknownOutcomeIsResolvedByTheNextOne() throws {
        let store = MemoryObjectStore()
        let (w, r) = (try Node(store), try Node(store))
        let writer = try w.open()
        let c = try writer.createCollection("c", dimension: 8, metric: .l2)
        let d = docs(0..<5)
        try c.upsert([d[0]])
        store.injectCreateFault(.appliedThenUnreachable, whereKeyContains: "/wal/")
        XCTAssertThrowsError(try c.upsert([d[1]]))
        try c.upsert([d[2]])
        XCTAssertEqual(c.count, 3, "the write that failed but was created is applied, as the log holds it")
        store.injectCreateFault(.unreachable, whereKeyContains: "/wal/")
        XCTAssertThrowsError(try c.upsert([d[3]]))
        try c.upsert([d[4]])
        XCTAssertEqual(c.count, 4, "the write that was never created is gone; its sequence numbers were reused")
        let reader = try r.open(readOnly: true)
        let ids: [DocumentID] = (0..<5).map { .uint(UInt64($0)) }
        XCTAssertEqual(
            Set(try reader.collection("c").get(ids: ids).map(\.id)), Set(try c.get(ids: ids).map(\.id)),
            "a fresh node reads what the writer holds")
        try reader.close()
        try writer.close()
    }

    func testAManifestCommittedByAnotherWriterFencesThisOne() throws {
        let store = MemoryObjectStore()
        let (nodeA, nodeB) = (try Node(store), try Node(store))
        let a = try nodeA.open()
        let ca = try a.createCollection("c", dimension: 8, metric: .l2)
        try ca.upsert(docs(0..<10))
        let b = try nodeB.open()
        let cb = try b.collection("c")
        try cb.upsert(docs(10..<20))
        try cb.flush()
        // A's next manifest version is taken: its flush is refused, and says why.
        XCTAssertThrowsError(try ca.flush()) { e in
            guard case .fenced = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        try? a.close()
        try b.close()
        let freshNode = try Node(store)
        let fresh = try freshNode.open(readOnly: true)
        XCTAssertEqual(try fresh.collection("c").count, 20)
        try fresh.close()
    }

    /// Two writers on one store, interleaved at random (a forced split brain): at most one of
    /// them commits any sequence number, the loser is fenced and acknowledges nothing after
    /// that, and a fresh node holds every acknowledged write.
    func testSplitBrainLosesNoAcknowledgedWrite() throws {
        for seed in 1...4 as ClosedRange<UInt64> {
            let store = MemoryObjectStore()
            let setupNode = try Node(store)
            let setup = try setupNode.open()
            try setup.createCollection("c", dimension: 8, metric: .l2).upsert(docs(0..<1))
            try setup.close()
            let nodes = [try Node(store), try Node(store)]
            let writers = try nodes.map { try $0.open() }
            let collections = try writers.map { try $0.collection("c") }
            var acked: [Int: [Float]] = [0: docs(0..<1)[0].vector]
            var fenced = [false, false]
            var rng = SplitMix64(seed: seed)
            let pool = docs(0..<400, seed: seed)
            for id in 1..<400 {
                let w = Int(rng.next() % 2)
                do {
                    try collections[w].upsert([pool[id]])
                    XCTAssertFalse(fenced[w], "seed \(seed): writer \(w) acknowledged a write after it was fenced")
                    acked[id] = pool[id].vector
                } catch let e as TidepoolError {
                    if case .fenced = e { fenced[w] = true } else if !fenced[w] { XCTFail("seed \(seed): \(e)") }
                }
                if rng.next() % 50 == 0 { try? collections[w].flush() }
            }
            XCTAssertTrue(fenced.contains(true), "seed \(seed): one writer must have lost")
            for w in writers { try? w.close() }
            let freshNode = try Node(store)
            let fresh = try freshNode.open(readOnly: true)
            let c = try fresh.collection("c")
            let got = try c.get(ids: acked.keys.map { .uint(UInt64($0)) })
            XCTAssertEqual(got.count, acked.count, "seed \(seed): acknowledged writes lost")
            for d in got {
                guard case .uint(let i) = d.id else { continue }
                XCTAssertEqual(d.vector, acked[Int(i)], "seed \(seed): id \(i)")
            }
            try fresh.close()
        }
    }

    /// A new writer fences its predecessor before acknowledging anything: a paused predecessor's
    /// next write fails at once, and a predecessor's write that landed after the new writer listed
    /// the log (a PUT in flight when it died) is replayed, not lost and not fenced over.
    func testANewWriterFencesItsPredecessorAndKeepsItsLateWrite() throws {
        let store = MemoryObjectStore()
        let (nodeA, nodeB) = (try Node(store), try Node(store))
        let a = try nodeA.open()
        let ca = try a.createCollection("c", dimension: 8, metric: .l2)
        try ca.upsert(docs(0..<10))
        // A's late write: the WAL object for the next sequence number, landing just before B's fence.
        let late = docs(10..<12)
        store.beforeNextCreate(whereKeyContains: "collections/c/wal/") { store, key in
            guard let seq = WALFormat.firstSeq(fromFileName: String(key.split(separator: "/").last ?? "")) else { return }
            var bytes = WALFileHeader(dimension: 8, firstSeq: seq).encoded()
            WALFormat.appendFrame(
                seq: seq, type: 1, payload: WALFormat.encodePayload(.upsert(late), dimension: 8), to: &bytes)
            store.plant(key, bytes)
        }
        let b = try nodeB.open()
        let cb = try b.collection("c")
        XCTAssertEqual(cb.count, 12, "the predecessor's late write is replayed")
        XCTAssertThrowsError(try ca.upsert(docs(12..<13)), "the paused predecessor acknowledges nothing more") { e in
            guard case .fenced = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try ca.flush()) { e in
            guard case .fenced = e as? TidepoolError else { return XCTFail("\(e)") }
        }
        try cb.upsert(docs(13..<14))
        try cb.flush()
        try? a.close()
        try b.close()
        let freshNode = try Node(store)
        let fresh = try freshNode.open(readOnly: true)
        XCTAssertEqual(try fresh.collection("c").count, 13)
        XCTAssertEqual(try fresh.collection("c").get(ids: [.uint(12)]).count, 0, "the refused write is not there")
        try fresh.close()
    }

    func testTheCacheKeepsItsBudgetAndNeverEvictsAMappedFile() throws {
        let dir = TempDir()
        let cache = try ObjectFileCache(root: dir.path, capacity: 1000, location: "mem://x")
        func put(_ name: String, _ n: Int) throws {
            try cache.fill(name) { t in try t.write([UInt8](repeating: 7, count: n), at: 0) }
        }
        try put("a.tps", 600)
        var held: MappedFile? = try cache.map("a.tps")
        XCTAssertEqual(held?.bytes.count, 600)
        try put("b.tps", 600)
        XCTAssertNotNil(try cache.map("a.tps"), "a mapped copy is never evicted")
        XCTAssertNil(cache.size("b.tps"), "the unmapped one went to keep the budget")
        held = nil
        try put("c.tps", 600)
        XCTAssertNil(cache.size("a.tps"), "released, least recently used: evicted")
        XCTAssertEqual(cache.snapshot.bytes, 600)
        XCTAssertEqual(cache.snapshot.evictions, 2)
        _ = held
        XCTAssertThrowsError(try ObjectFileCache(root: dir.path, capacity: 1000, location: "mem://other")) { e in
            XCTAssertTrue("\(e)".contains("mem://x"), "\(e)")
        }
        // Reopened, the copies left are found and counted.
        XCTAssertEqual(try ObjectFileCache(root: dir.path, capacity: 1000, location: "mem://x").snapshot.bytes, 600)
    }

    /// A writer keeps the WAL a successor must replay short: after 256 WAL objects (group
    /// commits) the memtable is flushed, however few rows it holds.
    func testTheUnflushedWALStaysShortInObjects() throws {
        let store = MemoryObjectStore()
        let node = try Node(store)
        let db = try node.open()
        let c = try db.createCollection("c", dimension: 8, metric: .l2)
        let all = docs(0..<300)
        for d in all { try c.upsert([d]) }  // one WAL object each
        let until = Date(timeIntervalSinceNow: 10)
        while c.info().segments.isEmpty && Date() < until { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(c.info().segments.count, 1, "a flush after 256 objects")
        XCTAssertEqual(c.info().segments.first?.rows, 256)
        XCTAssertEqual(c.info().memtableRows, 44)
        try db.close()
        let other = try Node(store)
        let reopened = try other.open()
        XCTAssertEqual(try reopened.collection("c").count, 300)
        try reopened.close()
    }
}
