extension Collection {
    /// A description of the collection's storage. On object storage its WAL's bytes come from a
    /// listing at most a minute old, or, `listingWAL` false, from the last listing only (0 before
    /// any): no store request.
    public func info(listingWAL: Bool = true) -> CollectionInfo {
        let snap = snapshot()
        let segs = snap.segments.map {
            CollectionInfo.SegmentInfo(
                id: $0.id, rows: $0.rowCount, deletedRows: $0.tombstones.deadCount(at: snap.visibleSeq),
                bytes: $0.byteCount, hasGraph: $0.graph != nil,
                vectorBytes: $0.sectionLength(.vectors), graphBytes: $0.sectionLength(.hnsw),
                codeBytes: $0.sectionLength(.sq8) + $0.sectionLength(.f16),
                index: $0.graph != nil ? "hnsw" : ($0.ivf != nil ? "ivf" : "flat"),
                ivfBytes: $0.sectionLength(.ivf), ivfReadsVectors: $0.ivf?.codec == .flat,
                ivfLists: $0.ivf?.nlist ?? 0, graphMeanDegree: $0.graph?.meanDegree ?? 0, tier: $0.tier,
                tierBytes: $0.tier == .cold ? $0.residentBytes.cold : $0.residentBytes.hotOrWarm)
        }
        var memtableRows = 0, memtableIndexedRows = 0
        for case .memtable(_, let rows, let indexed) in snap.containers {
            memtableRows += rows
            memtableIndexedRows += indexed
        }
        let walBytes = (listingWAL ? walBytesListed(noOlderThan: .seconds(60)) : knownWALBytes) ?? 0
        return CollectionInfo(
            name: name, dimension: dimension, metric: metric, count: count, segments: segs,
            memtableRows: memtableRows, memtableIndexedRows: memtableIndexedRows, walBytes: walBytes,
            flushedSeq: state.withLock { flushedSeq }, lastSeq: snap.visibleSeq)
    }

    /// The bytes of the collection's WAL files: listed now on a local directory; on object
    /// storage, as listed within `maxAge` (listed now when the last listing is older).
    func walBytesListed(noOlderThan maxAge: Duration) -> Int? {
        if storage.logsAreObjects, let memo = listedWALBytes.withLock({ $0 }), ContinuousClock.now - memo.at < maxAge { return memo.bytes }
        guard let bytes = try? storage.bytes(under: folder + "/wal") else { return nil }
        if storage.logsAreObjects { listedWALBytes.withLock { $0 = (bytes, .now) } }
        return bytes
    }

    /// The WAL's bytes without a store request: listed now on a local directory, as last
    /// listed on object storage (nil before the first listing).
    var knownWALBytes: Int? {
        storage.logsAreObjects ? listedWALBytes.withLock({ $0 })?.bytes : walBytesListed(noOlderThan: .zero)
    }

    /// Whether `info(listingWAL: false)` reports the WAL's bytes from a listing: always on a local
    /// directory; on object storage once something listed them (monitoring skips the figure until then).
    public var walBytesKnown: Bool { !storage.logsAreObjects || listedWALBytes.withLock({ $0 }) != nil }

    /// Rows waiting for an index: in memtables large enough to get a graph, the rows the
    /// background indexer (or, once frozen, the flush) has not reached yet. Every search scans
    /// them exactly, so a large backlog slows every query of the collection. Smaller memtables
    /// are scanned exactly by design and count nothing. Cheap (one short lock), for admission.
    public var unindexedRows: Int {
        state.withLock {
            (frozen + [active]).reduce(0) { n, m in
                m.hasGraph && m.count >= Collection.memtableGraphMinRows ? n + m.count - m.indexedCount : n
            }
        }
    }

    /// Checks invariants beyond checksums: every live id maps to one live row and back.
    func checkInvariants() throws -> [String] {
        var problems: [String] = []
        let snap = snapshot()
        var seen = Set<DocumentID>()
        for c in snap.containers {
            if case .segment(let s) = c { try s.verifyChecksums() }
            for r in 0..<c.rowCount {
                let t = c.tombstones.seq(r)
                // A memtable row is live while its tombstone is 0; a segment row until a deletion the snapshot sees.
                if case .memtable = c, t != 0 { continue }
                if t != 0 && t <= snap.visibleSeq { continue }
                let id = try c.documentID(r)
                if !seen.insert(id).inserted { problems.append("collection '\(name)': id \(id) is live in two rows") }
            }
        }
        if seen.count != count { problems.append("collection '\(name)': \(seen.count) live rows but \(count) ids") }
        return problems
    }
}
