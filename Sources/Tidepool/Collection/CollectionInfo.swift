import Foundation

/// A description of a collection's storage, for `inspect`.
public struct CollectionInfo: Sendable, Codable {
    public struct SegmentInfo: Sendable, Codable {
        public var id: UInt64
        public var rows: Int
        public var deletedRows: Int
        public var bytes: Int
        public var hasGraph: Bool
        /// Bytes of full-precision vectors, of the graph, and of the compressed vectors the walk
        /// reads (SQ8 codes or f16; 0 when absent).
        public var vectorBytes: Int
        public var graphBytes: Int
        public var codeBytes: Int
        /// What a graph search keeps touching, so what should stay in memory: the graph and the
        /// vectors it walks (compressed ones when present, else f32; f32 rows are then read only to re-rank).
        /// "flat", "hnsw" or "ivf".
        public var index: String
        /// Bytes of the IVF section (centroids, lists, codes; 0 when absent).
        public var ivfBytes: Int
        /// Whether IVF lists hold row numbers only, so scans read the f32 vectors.
        public var ivfReadsVectors: Bool
        /// IVF posting lists (0 without IVF).
        public var ivfLists: Int
        /// Level-0 links per node on average (0 without a graph); at most 2·M.
        public var graphMeanDegree: Double
        /// Where the segment's search reads from (see `SegmentTier`).
        public var tier: SegmentTier
        /// What the segment's search keeps touching in its tier, in bytes (the budget's charge):
        /// section sizes, not a measurement — `tidepool bench --memory-limit` measures.
        public var tierBytes: Int
        /// Section bytes a search keeps touching: the graph and the vectors it walks (compressed
        /// ones when present, else f32), or the IVF section (plus f32 for IVF-flat); f32 rows are
        /// otherwise read only to re-rank. A sum of section sizes, not what the process needs.
        public var searchResidentBytes: Int {
            if hasGraph { return graphBytes + (codeBytes > 0 ? codeBytes : vectorBytes) }
            if ivfBytes > 0 { return ivfBytes + (ivfReadsVectors ? vectorBytes : 0) }
            return vectorBytes
        }
    }
    public var name: String
    public var dimension: Int
    public var metric: Metric
    public var count: Int
    public var segments: [SegmentInfo]
    public var memtableRows: Int
    /// In-memory rows already in their memtable's graph (the rest are scanned exactly).
    public var memtableIndexedRows: Int
    public var walBytes: Int
    public var flushedSeq: UInt64
    public var lastSeq: UInt64
}
