/// The mutable in-memory tier: rows appended in sequence order into storage
/// allocated once at full capacity, so readers holding a snapshot can scan
/// rows `0..<count` while the writer appends beyond them (publication happens
/// under the collection's state lock). Searched exactly; flushed to a segment.
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
    /// Rows appended so far (written under the collection's state lock).
    var count = 0
    /// Set when frozen: every operation up to this sequence number was applied here or earlier.
    var lastSeq: UInt64 = 0

    init(containerID: UInt64, dimension: Int, capacity: Int) {
        self.containerID = containerID
        self.dimension = dimension
        self.capacity = max(capacity, 1)
        vectors = .allocate(capacity: self.capacity * dimension)
        ids = .allocate(capacity: self.capacity)
        attributes = .allocate(capacity: self.capacity)
        seqs = .allocate(capacity: self.capacity)
        terms = .allocate(capacity: self.capacity)
        tombstones = Tombstones(count: self.capacity)
    }

    deinit {
        ids.deinitialize(count: count)
        attributes.deinitialize(count: count)
        terms.deinitialize(count: count)
        terms.deallocate()
        vectors.deallocate()
        ids.deallocate()
        attributes.deallocate()
        seqs.deallocate()
    }

    var room: Int { capacity - count }

    /// Appends one row; returns its index. The caller checked `room`.
    func append(_ doc: Document, seq: UInt64, terms rowTerms: [String]) -> Int {
        let row = count
        doc.vector.withUnsafeBufferPointer { (vectors + row * dimension).update(from: $0.baseAddress!, count: dimension) }
        (ids + row).initialize(to: doc.id)
        (attributes + row).initialize(to: doc.attributes)
        (terms + row).initialize(to: rowTerms)
        seqs[row] = seq
        count += 1
        return row
    }

    @inline(__always) func vector(_ row: Int) -> UnsafePointer<Float> { UnsafePointer(vectors + row * dimension) }
}
