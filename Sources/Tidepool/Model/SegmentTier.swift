/// Where a segment's search reads from, which decides what it needs in memory.
///
/// The planner picks a tier per segment from `DatabaseOptions.memoryBudget` (see
/// docs/COLD_TIER.md): without a budget, every segment is hot or warm.
public enum SegmentTier: String, Sendable, Codable {
    /// A graph segment (or a small exact one): the walk touches the graph and the vectors it
    /// reads (SQ8/f16 codes or f32) on every query, so they should stay in memory.
    case hot
    /// An IVF segment searched through its mapping: probed lists' codes, then a few f32 rows
    /// to re-rank, all read through the page cache as any mapped file.
    case warm
    /// An IVF segment whose centroids, lists and codes are pinned in the process's own memory
    /// while its f32 rows stay on disk: a re-rank asks the kernel for all its candidates' rows
    /// at once (`MADV_WILLNEED`, so the reads proceed in parallel) and read-ahead is off, so
    /// the page cache holds only what queries read.
    case cold
}
