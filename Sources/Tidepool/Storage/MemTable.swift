import Atomics
import Foundation

/// The mutable in-memory tier: rows appended in sequence order into storage
/// allocated once at full capacity, so readers holding a snapshot can scan
/// rows `0..<count` while the writer appends beyond them (publication happens
/// under the collection's state lock). Rows are indexed into an HNSW graph in the
/// background as they arrive (`graph`, rows below `indexedCount`), so a search walks the
/// graph over those and scans only the newest rows exactly; a flush writes that graph as
/// the segment's, instead of building one.
final class MemTable: @unchecked Sendable {
    let containerID: UInt64
    let dimension: Int
    let capacity: Int
    let vectors: UnsafeMutablePointer<Float>
    let ids: UnsafeMutablePointer<DocumentID>
    let attributes: UnsafeMutablePointer<[String: AttributeValue]>
    let seqs: UnsafeMutablePointer<UInt64>
    /// Each row's analyzed text terms, when the collection has a text index.
    let terms: UnsafeMutablePointer<[String]>
    let tombstones: Tombstones
    /// 1 for a row without a vector (its vector slot holds zeros, and no graph links it).
    let vectorless: UnsafeMutablePointer<UInt8>
    private let vectorlessRows = ManagedAtomic<Int>(0)
    /// Whether any row appended so far has no vector (most memtables: none, and searches skip the check).
    var hasVectorlessRows: Bool { vectorlessRows.load(ordering: .acquiring) > 0 }
    /// Rows appended so far (written under the collection's state lock).
    var count = 0
    /// Set when frozen: every operation up to this sequence number was applied here or earlier.
    var lastSeq: UInt64 = 0
    /// HNSW parameters when this memtable is big enough to get a graph.
    let hnsw: HNSWParameters?
    let metric: Metric
    let seed: UInt64
    /// Created by the first `index` call, so memtables that never fill pay nothing for it.
    private let lazyGraph = ManagedAtomicLazyReference<HNSWBuilder>()
    /// The graph being built over the rows (nil until indexing starts, and for small memtables).
    var graph: HNSWBuilder? { lazyGraph.load() }
    /// Whether rows will be indexed into a graph.
    var hasGraph: Bool { hnsw != nil }
    private let indexed = ManagedAtomic<Int>(0)
    /// Set when the memtable's collection is dropped: indexing stops at the next chunk of rows.
    private let abandoned = ManagedAtomic<Bool>(false)
    /// Serializes `index(upTo:threads:)`: the background indexer and a flush finishing the job.
    private let indexing = NSLock()

    /// Rows `0..<indexedCount` are in `graph` and findable through it.
    var indexedCount: Int { indexed.load(ordering: .acquiring) }

    init(
        containerID: UInt64, dimension: Int, capacity: Int, metric: Metric = .l2, hnsw: HNSWParameters? = nil,
        seed: UInt64 = 100
    ) {
        self.containerID = containerID
        self.dimension = dimension
        self.capacity = max(capacity, 1)
        vectors = .allocate(capacity: self.capacity * dimension)
        ids = .allocate(capacity: self.capacity)
        attributes = .allocate(capacity: self.capacity)
        seqs = .allocate(capacity: self.capacity)
        terms = .allocate(capacity: self.capacity)
        tombstones = Tombstones(count: self.capacity)
        // calloc: pages of rows never appended are never committed.
        vectorless = (calloc(self.capacity, 1) ?? UnsafeMutableRawPointer(UnsafeMutablePointer<UInt8>.allocate(capacity: self.capacity)))
            .bindMemory(to: UInt8.self, capacity: self.capacity)
        if vectorless[0] != 0 || vectorless[self.capacity - 1] != 0 { vectorless.update(repeating: 0, count: self.capacity) }
        self.hnsw = hnsw
        self.metric = metric
        self.seed = seed
    }

    /// Inserts rows up to `rows` (already appended) into the graph. Rows are inserted in order,
    /// so `indexedCount` only grows, and each published row's links are complete.
    func index(upTo rows: Int, threads: Int) throws {
        guard let hnsw else { return }
        try indexing.withLock {
            let graph =
                try lazyGraph.load()
                ?? lazyGraph.storeIfNilThenLoad(
                    HNSWBuilder(
                        vectors: vectors, count: capacity, dimension: dimension, metric: metric, parameters: hnsw, seed: seed,
                        skip: UnsafePointer(vectorless)))
            let from = indexed.load(ordering: .relaxed)
            guard rows > from else { return }
            let abandoned = self.abandoned
            graph.insert(rows: from..<rows, threads: threads) { abandoned.load(ordering: .relaxed) }
            if abandoned.load(ordering: .relaxed) { throw TidepoolError.closed("the memtable was abandoned: its collection is dropped") }
            indexed.store(rows, ordering: .releasing)
        }
    }

    /// Stops indexing (`index` throws from its next chunk of rows on): the collection is dropped.
    func abandon() { abandoned.store(true, ordering: .relaxed) }

    deinit {
        ids.deinitialize(count: count)
        attributes.deinitialize(count: count)
        terms.deinitialize(count: count)
        terms.deallocate()
        vectors.deallocate()
        free(vectorless)
        ids.deallocate()
        attributes.deallocate()
        seqs.deallocate()
    }

    var room: Int { capacity - count }

    /// Most rows a memtable holds, whatever its byte budget: each row also costs about 64 bytes
    /// of id, attributes, sequence number and tombstone, so a tiny dimension with a large budget
    /// must not size it for hundreds of millions of rows.
    static let maxRows = 1 << 22

    /// The rows a memtable of `bytes` bytes of vectors holds (at least 256, at most `maxRows`).
    /// Its storage is reserved for that many but committed only as rows arrive.
    static func rows(forBytes bytes: Int, dimension: Int) -> Int { min(maxRows, max(256, bytes / (dimension * 4))) }

    /// Appends one row; returns its index. The caller checked `room`.
    func append(_ doc: Document, seq: UInt64, terms rowTerms: [String]) -> Int {
        let row = count
        if doc.vector.isEmpty {
            (vectors + row * dimension).update(repeating: 0, count: dimension)
            vectorless[row] = 1
            vectorlessRows.wrappingIncrement(ordering: .releasing)
        } else {
            doc.vector.withUnsafeBufferPointer { (vectors + row * dimension).update(from: $0.baseAddress!, count: dimension) }
        }
        (ids + row).initialize(to: doc.id)
        (attributes + row).initialize(to: doc.attributes)
        (terms + row).initialize(to: rowTerms)
        seqs[row] = seq
        count += 1
        return row
    }

    @inline(__always) func vector(_ row: Int) -> UnsafePointer<Float> { UnsafePointer(vectors + row * dimension) }

    /// Whether row `row` has a vector.
    @inline(__always) func hasVector(_ row: Int) -> Bool { vectorless[row] == 0 }

    /// Rows `0..<rows` that have no vector; nil when there are none.
    func vectorlessBitmap(rows: Int) -> Bitmap? {
        guard hasVectorlessRows else { return nil }
        var b = Bitmap(count: rows)
        for r in 0..<rows where vectorless[r] != 0 { b.insert(r) }
        return b.cardinality == 0 ? nil : b
    }
}
