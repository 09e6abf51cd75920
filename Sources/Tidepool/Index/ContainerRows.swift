/// The rows of one container (a segment, or a memtable's rows up to a snapshot) as one search
/// sees them: their f32 vectors, which are dead at the snapshot, and, for a memtable, which were
/// appended after it (skipped).
struct ContainerRows {
    let vectors: UnsafePointer<Float>
    let dead: DeadFilter
    /// Memtables: each row's sequence number, for rows appended after the snapshot; nil for segments.
    let sequences: UnsafePointer<UInt64>?
    let visibleSeq: UInt64

    /// Whether row `row` existed at the snapshot (always, in a segment).
    @inline(__always) func isVisible(_ row: Int) -> Bool {
        guard let sequences else { return true }
        return sequences[row] <= visibleSeq
    }
}

/// One query as an index sees it: the prepared vector (normalized for cosine) and what the
/// caller asked for.
struct IndexQuery {
    let vector: UnsafePointer<Float>
    let k: Int
    /// The graph beam width (at least k).
    let ef: Int
    /// Candidates to re-score with f32 after a walk or list scan over codes; nil: the index's default.
    let rerank: Int?
    /// IVF lists to scan; nil: the collection's default for the segment's list count.
    let nprobe: Int?
    let distance: DistanceFunction
    let metric: Metric

    var dimension: Int { distance.dimension }
}
