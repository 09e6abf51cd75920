import TidepoolKernels

/// A segment's SQ8 codes, read in place from the mapped file.
struct SQ8View: @unchecked Sendable {
    let quantizer: ScalarQuantizer
    let codes: UnsafePointer<UInt8>

    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, dimension: Int, rows: Int) throws {
        func corrupt(_ at: Int, _ why: String) -> TidepoolError { .corrupt(file: file, offset: fileOffset + at, reason: why) }
        guard bytes.count >= 8 else { throw corrupt(0, "sq8 section too short") }
        let dim = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard dim == dimension else { throw corrupt(0, "sq8 section dimension \(dim), expected \(dimension)") }
        let start = ScalarQuantizer.codesOffset(dimension: dim)
        guard bytes.count == start + rows * dim else {
            throw corrupt(0, "sq8 section holds \(bytes.count) bytes, expected \(start + rows * dim)")
        }
        var lower = [Float](), step = [Float]()
        for d in 0..<dim {
            let lo = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 + 4 * d, as: UInt32.self)))
            let st = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 + 4 * (dim + d), as: UInt32.self)))
            guard lo.isFinite, st.isFinite, st > 0 else {
                throw corrupt(8 + 4 * d, "sq8 range of dimension \(d) is not finite and positive")
            }
            lower.append(lo)
            step.append(st)
        }
        quantizer = ScalarQuantizer(dimension: dim, lower: lower, step: step)
        codes = (bytes.baseAddress! + start).assumingMemoryBound(to: UInt8.self)
    }
}

/// A query prepared against one SQ8 quantizer: the engine's internal distance (squared L2, or
/// the negated inner product) to a row, estimated from its code. Its buffers belong to the
/// search's scratch, so preparing allocates nothing.
struct SQ8Query {
    let dimension: Int
    /// Dot metrics: q∘step. L2: (q − lower) / step.
    let folded: UnsafeMutablePointer<Float>
    /// L2 only: step², the weight of each dimension.
    let weights: UnsafeMutablePointer<Float>
    /// Dot metrics: q·lower, the part of q·x that does not depend on the code.
    let bias: Float
    let usesDot: Bool

    init(query: UnsafePointer<Float>, quantizer q: ScalarQuantizer, metric: Metric, buffers: SQ8QueryBuffers) {
        dimension = q.dimension
        (folded, weights) = buffers.reserve(dimension: q.dimension)
        usesDot = metric.usesDot
        var b: Float = 0
        for d in 0..<dimension {
            if usesDot {
                folded[d] = query[d] * q.step[d]
                b += query[d] * q.lower[d]
            } else {
                folded[d] = (query[d] - q.lower[d]) / q.step[d]
            }
            weights[d] = q.step[d] * q.step[d]
        }
        bias = b
    }
}

/// Where a prepared SQ8 query lives: one search's scratch (`SearchScratch.sq8`).
final class SQ8QueryBuffers {
    private let floats = ScratchBuffer<Float>()

    /// The folded query and the weights, `dimension` floats each.
    func reserve(dimension: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let p = floats.reserve(2 * dimension)
        return (p, p + dimension)
    }
}

/// Estimated distances from SQ8 codes, for the graph walk and IVF lists; the best candidates are re-ranked
/// with exact f32 distances afterwards.
struct SQ8RowDistance: RowDistance {
    let query: SQ8Query
    let codes: UnsafePointer<UInt8>
    let kernels: UnsafePointer<tp_sq8_table>

    @inline(__always) func callAsFunction(_ row: UInt32) -> Float {
        let c = codes + Int(row) * query.dimension
        if query.usesDot { return -(query.bias + kernels.pointee.dot(query.folded, c, query.dimension)) }
        return kernels.pointee.l2(query.folded, query.weights, c, query.dimension)
    }
    @inline(__always) func prefetch(_ row: UInt32) { tp_prefetch(codes + Int(row) * query.dimension) }
    @inline(__always) func prefetchAll(_ row: UInt32) { tp_prefetch_range(codes + Int(row) * query.dimension, query.dimension) }
}
