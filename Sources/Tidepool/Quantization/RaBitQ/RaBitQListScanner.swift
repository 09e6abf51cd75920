import TidepoolKernels

/// One query's scan of IVF lists over RaBitQ codes: for every row of a list, a lower bound on its
/// distance (estimate minus its error bound), so the caller re-scores with f32 only the rows whose
/// bound beats the k-th exact distance found so far.
struct RaBitQListScanner {
    let codes: RaBitQCodes
    let dimension: Int
    let usesDot: Bool
    private let rotatedQuery: UnsafeMutablePointer<Float>
    private let work: UnsafeMutablePointer<Float>
    private let planes: UnsafeMutablePointer<UInt64>
    private let sums: UnsafeMutablePointer<UInt32>
    private let pops: UnsafeMutablePointer<UInt32>

    /// Rotates the query once, for lists of at most `maxListLength` rows.
    init(
        codes: RaBitQCodes, query: UnsafePointer<Float>, dimension: Int, metric: Metric, maxListLength: Int,
        scratch: RaBitQScanScratch
    ) {
        self.codes = codes
        self.dimension = dimension
        usesDot = metric.usesDot
        rotatedQuery = scratch.rotatedQuery.reserve(dimension)
        work = scratch.work.reserve(dimension)
        planes = scratch.planes.reserve(4 * codes.quantizer.words)
        sums = scratch.sums.reserve(maxListLength)
        pops = scratch.pops.reserve(maxListLength)
        codes.quantizer.rotate(query, into: rotatedQuery)
    }

    /// Writes lower bounds for the rows of list `l` (positions `rows`) to `bounds`. The probe
    /// distance is −q·c for inner products, whose estimates need q·c.
    func lowerBounds(list l: Int, rows: Range<Int>, probeDistance: Float, into bounds: UnsafeMutablePointer<Float>) {
        let q = codes.quantizer, words = q.words
        var prepared = q.prepare(
            rotatedQuery: rotatedQuery, rotatedCentroid: codes.rotatedCentroids + l * dimension,
            planes: planes, work: work)
        if usesDot { prepared.queryDotCentroid = -probeDistance }
        let k = codes.kernels.pointee
        k.scan(codes.codes + rows.lowerBound * words, rows.count, words, planes, sums, pops)
        var query = tp_rabitq_query(
            delta: prepared.delta, lower: prepared.lower, qsum: prepared.sum, inv_root_d: 1 / Float(dimension).squareRoot(),
            qnorm: prepared.queryNorm, qdotc: prepared.queryDotCentroid, uses_dot: usesDot ? 1 : 0)
        k.lower_bounds(sums, pops, codes.factors + rows.lowerBound * RaBitQ.factorCount, rows.count, &query, bounds)
    }
}

/// The RaBitQ scan's buffers in one search's scratch.
final class RaBitQScanScratch {
    let rotatedQuery = ScratchBuffer<Float>()
    /// The query's residual direction for one list.
    let work = ScratchBuffer<Float>()
    /// The query's 4-bit values by bit plane (4 × words).
    let planes = ScratchBuffer<UInt64>()
    /// A list's popcount sums and popcounts.
    let sums = ScratchBuffer<UInt32>()
    let pops = ScratchBuffer<UInt32>()
}
