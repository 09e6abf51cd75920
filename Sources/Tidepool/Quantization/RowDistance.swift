import TidepoolKernels

/// Distances from one query to rows of a container, by row: full-precision vectors, or
/// compressed codes. Generic parameters of the graph search, so each is specialized.
protocol RowDistance {
    func callAsFunction(_ row: UInt32) -> Float
    /// Pulls in the first cache line of a row.
    func prefetch(_ row: UInt32)
    /// Pulls in all of a row.
    func prefetchAll(_ row: UInt32)
}

/// Exact distances to f32 vectors.
struct F32RowDistance: RowDistance {
    let query: UnsafePointer<Float>
    let vectors: UnsafePointer<Float>
    let distance: DistanceFunction

    @inline(__always) func callAsFunction(_ row: UInt32) -> Float { distance(query, vectors + Int(row) * distance.dimension) }
    @inline(__always) func prefetch(_ row: UInt32) { tp_prefetch(vectors + Int(row) * distance.dimension) }
    @inline(__always) func prefetchAll(_ row: UInt32) {
        tp_prefetch_range(vectors + Int(row) * distance.dimension, distance.dimension * 4)
    }
}
