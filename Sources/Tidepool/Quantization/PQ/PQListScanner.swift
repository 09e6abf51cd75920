import TidepoolKernels

/// One query's scan of IVF lists over PQ codes: the estimated distance of every row of a list.
///
/// Codes are residuals to the list centroid. Inner products split as q·c + q·r, so one table serves
/// every list, offset by the list's centroid term (its probe distance, −q·c); squared L2 needs the
/// table of q − c, one per list. Fast-scan blocks (layout 1) quantize the table to bytes and sum a
/// block by byte lookups: estimate = bias + step · sum, used only to pick the rows to re-score;
/// list-order codes (layout 0) sum the float table.
struct PQListScanner {
    let codes: PQCodes
    let query: UnsafePointer<Float>
    let dimension: Int
    let usesDot: Bool
    private let table: UnsafeMutablePointer<Float>
    private let mins: UnsafeMutablePointer<Float>
    private let bytes: UnsafeMutablePointer<UInt8>
    private let sums: UnsafeMutablePointer<UInt16>
    private let residual: UnsafeMutablePointer<Float>
    private var step: Float = 1
    private var tableBias: Float = 0

    /// Prepares a query for lists of at most `maxListLength` rows (the inner-product table once).
    init(codes: PQCodes, query: UnsafePointer<Float>, dimension: Int, metric: Metric, maxListLength: Int, scratch: PQScanScratch) {
        self.codes = codes
        self.query = query
        self.dimension = dimension
        usesDot = metric.usesDot
        let m = codes.m
        table = scratch.table.reserve(m * 256)
        mins = scratch.mins.reserve(m)
        bytes = scratch.byteTable.reserve(m * 256)
        sums = scratch.sums.reserve(maxListLength + PQCodes.block)
        residual = scratch.residual.reserve(dimension)
        if usesDot {
            codes.quantizer.dotTable(query, into: table)
            if codes.blockStarts != nil { step = codes.kernels.pointee.quantize(table, m, mins, bytes, &tableBias) }
        }
    }

    /// Writes the estimates of list `l`'s rows (positions `rows`, in list order) to `estimates`
    /// and returns the offset to add to each: the list's probe distance for inner products, 0 for L2.
    mutating func scan(
        list l: Int, rows: Range<Int>, probeDistance: Float, centroid: UnsafePointer<Float>,
        into estimates: UnsafeMutablePointer<Float>
    ) -> Float {
        let m = codes.m, k = codes.kernels.pointee
        var bias: Float = 0
        if usesDot {
            bias = probeDistance
        } else {
            for d in 0..<dimension { residual[d] = query[d] - centroid[d] }
            codes.quantizer.tableL2(residual, into: table, kernel: k.table_l2)
            if codes.blockStarts != nil { step = k.quantize(table, m, mins, bytes, &tableBias) }
        }
        if let starts = codes.blockStarts {
            k.scan_blocked(codes.codes + starts[l], (rows.count + PQCodes.block - 1) / PQCodes.block, m, bytes, sums)
            for j in 0..<rows.count { estimates[j] = tableBias + step * Float(sums[j]) }
        } else {
            k.scan(codes.codes + rows.lowerBound * m, rows.count, m, table, estimates)
        }
        return bias
    }
}

/// The PQ scan's buffers in one search's scratch.
final class PQScanScratch {
    /// The float distance table, m × 256.
    let table = ScratchBuffer<Float>()
    /// Each table row's minimum (fast scan).
    let mins = ScratchBuffer<Float>()
    /// The table quantized to bytes (fast scan).
    let byteTable = ScratchBuffer<UInt8>()
    /// A list's u16 sums of byte-table entries (fast scan), padded to whole blocks.
    let sums = ScratchBuffer<UInt16>()
    /// The query minus a list centroid (L2).
    let residual = ScratchBuffer<Float>()
}
