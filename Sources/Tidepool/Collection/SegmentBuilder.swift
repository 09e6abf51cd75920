/// Writes one segment file with the index the planner picks for its size (`SegmentPlan`), and
/// opens it: exact scans only, an HNSW graph (over f32, or walking SQ8 or f16 codes), or IVF
/// lists. A graph segment stores its rows in cluster order (`RowOrder`), the graph renumbered with
/// them; `write` returns that order (`order[row] = index in contents`), nil when rows are stored
/// as given.
struct SegmentBuilder {
    let storage: any StorageBackend
    /// The collection's folder in `storage`.
    let folder: String
    let dimension: Int
    let metric: Metric
    let config: CollectionConfig
    let buildThreads: Int
    /// The database's memory budget in bytes, which the planner weighs (nil: none).
    var memoryBudget: Int? = nil

    /// `graph` is a memtable's finished graph over exactly these rows, reused when the plan is HNSW.
    func write(_ contents: SegmentContents, id: UInt64, graph: HNSWBuilder? = nil) throws -> (Segment, [UInt32]?) {
        let name = folder + "/segments/" + SegmentFormat.fileName(id: id)
        var order: [UInt32]?
        // Planned by the rows that have a vector: those are what an index serves.
        switch SegmentPlan(rows: contents.vectorRowCount, dimension: dimension, config: config, memoryBudget: memoryBudget) {
        case .flat:
            _ = try SegmentWriter.write(contents, graph: nil, text: textSection(contents), to: name, storage: storage)
        case .hnsw(_, let q):
            // The graph is built over the rows as given, inserted in a shuffled order (rows
            // compacted from cluster-ordered segments arrive grouped), then renumbered with them.
            let builder: HNSWBuilder
            let skip = contents.vectorlessFlags()  // rows without a vector: in no list
            defer { skip?.deallocate() }
            if let graph {
                builder = graph
            } else {
                builder = try HNSWBuilder(
                    vectors: contents.vectors, count: contents.rowCount, dimension: dimension,
                    metric: metric, parameters: config.hnsw, seed: 100 &+ id, skip: skip.map { UnsafePointer($0) })
                builder.build(threads: buildThreads, order: RowOrder.shuffled(count: contents.rowCount, seed: 200 &+ id))
            }
            builder.linkStrandedNodes(rows: contents.rowCount)
            order = RowOrder.clustered(
                contents.vectors, count: contents.rowCount, dimension: dimension,
                seed: 100 &+ id, threads: buildThreads)
            let buffer: UnsafeMutablePointer<Float>? = order == nil ? nil : .allocate(capacity: contents.rowCount * dimension)
            defer { buffer?.deallocate() }
            var rows = contents
            if let order, let buffer { rows = contents.reordered(order, into: buffer) }
            _ = try builder.stored(rows: contents.rowCount, order: order).withUnsafeBytes {
                try SegmentWriter.write(rows, graph: $0, text: textSection(rows), codes: codesSection(rows, q), to: name, storage: storage)
            }
        case .ivf(let codec, let nlist, let m):
            let section = IVFFormat.build(
                contents.vectors, count: contents.rowCount, dimension: dimension, metric: metric,
                nlist: nlist, codec: codec, pqSubspaces: m, iterations: config.ivf.iterations,
                seed: 100 &+ id, threads: buildThreads)
            _ = try SegmentWriter.write(
                contents, graph: nil, text: textSection(contents), codes: (.ivf, section), to: name, storage: storage)
        }
        return (try Segment(id: id, name: name, storage: storage, dimension: dimension, metric: metric, verifyChecksums: false), order)
    }

    /// Compressed vectors for a graph segment's walk.
    private func codesSection(_ c: SegmentContents, _ q: Quantization) -> (SegmentFormat.Kind, [UInt8])? {
        switch q {
        case .none, .pq, .rabitq: return nil
        case .sq8: return (.sq8, ScalarQuantizer.section(c.vectors, count: c.rowCount, dimension: dimension))
        case .f16: return (.f16, HalfPrecision.section(c.vectors, count: c.rowCount, dimension: dimension))
        }
    }

    private func textSection(_ c: SegmentContents) -> [UInt8]? {
        guard let text = config.text else { return nil }
        return TextIndexFormat.build(rows: c.rowCount) { text.terms(c.attributes[$0]) }
    }
}

/// The rows of a new segment and where each came from (row i from `sources[i]`): a flush's
/// memtable rows or a compaction's segment rows. After the manifest names the segment, the
/// sources' tombstones carry over and the id map moves to the new rows.
struct MovedRows {
    struct Source {
        /// The source container's id (a segment's, or a memtable's with `memtableIDBit`).
        let container: UInt64
        let tombstones: Tombstones
        let row: Int
    }

    private(set) var sources: [Source]

    init(_ sources: [Source]) { self.sources = sources }

    /// Applies the order the segment stores its rows in (`order[new] = old`).
    mutating func reorder(_ order: [UInt32]?) {
        if let order { sources = order.map { sources[Int($0)] } }
    }

    /// Marks in `segment` the deletions of its rows' sources up to `upTo` (every one when nil).
    func carryTombstones(into segment: Segment, upTo cutoff: UInt64? = nil) {
        for (i, s) in sources.enumerated() {
            let t = s.tombstones.seq(s.row)
            if t != 0 && t <= (cutoff ?? .max) { segment.tombstones.mark(i, seq: t) }
        }
    }

    /// Points the ids whose current version is a source row at the new segment's row. `id(i)`
    /// gives row i's id (nil: unreadable, left as it is). Caller holds the collection's state lock.
    func remap(_ idMap: inout IDMap, to segment: Segment, id: (Int) -> DocumentID?) {
        for (i, s) in sources.enumerated() where s.tombstones.seq(s.row) == 0 {
            guard let docID = id(i) else { continue }
            if idMap[docID] == RowRef(container: s.container, row: UInt32(s.row)) {
                idMap[docID] = RowRef(container: segment.id, row: UInt32(i))
            }
        }
    }
}
