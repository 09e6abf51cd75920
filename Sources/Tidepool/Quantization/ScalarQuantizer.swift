import Foundation
import TidepoolKernels

/// SQ8 scalar quantization: each dimension mapped affinely onto 0...255 between its minimum
/// and maximum over the segment's rows (4× smaller than f32).
///
/// Trained on the rows it encodes, so no row is clamped and the error of every coordinate is
/// at most half a step: |x − decode(encode(x))| ≤ step/2 per dimension. Distances are
/// asymmetric (the query stays f32): the per-dimension offsets and steps are folded into the
/// query once, and the inner loop is an f32 × u8 kernel (`tp_sq8_table`).
struct ScalarQuantizer: Equatable {
    let dimension: Int
    /// Per dimension: the value of code 0.
    let lower: [Float]
    /// Per dimension: the value of one code step (1 for a constant dimension, whose codes are 0).
    let step: [Float]

    /// Learns the per-dimension range of `count` row-major vectors.
    static func train(_ vectors: UnsafePointer<Float>, count: Int, dimension: Int) -> ScalarQuantizer {
        var lo = [Float](repeating: .infinity, count: dimension)
        var hi = [Float](repeating: -.infinity, count: dimension)
        for r in 0..<count {
            let v = vectors + r * dimension
            for d in 0..<dimension {
                lo[d] = min(lo[d], v[d])
                hi[d] = max(hi[d], v[d])
            }
        }
        if count == 0 { lo = .init(repeating: 0, count: dimension); hi = lo }
        let step = (0..<dimension).map { d -> Float in
            let s = (hi[d] - lo[d]) / 255
            return s > 0 && s.isFinite ? s : 1
        }
        return ScalarQuantizer(dimension: dimension, lower: lo, step: step)
    }

    /// Encodes one vector into `dimension` bytes (values outside the trained range are clamped).
    func encode(_ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt8>) {
        for d in 0..<dimension {
            let c = ((v[d] - lower[d]) / step[d]).rounded()
            out[d] = UInt8(max(0, min(255, c.isNaN ? 0 : c)))
        }
    }

    func decode(_ code: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        for d in 0..<dimension { out[d] = lower[d] + step[d] * Float(code[d]) }
    }

    // MARK: Persistence (the segment's `sq8` section)

    /// Section layout: u32 dimension, u32 reserved, f32 lower[dim], f32 step[dim], zero padding
    /// to a 64-byte boundary, then `rows × dimension` code bytes.
    static func codesOffset(dimension: Int) -> Int { align64(8 + 8 * dimension) }

    /// The whole section for `count` vectors: trains, encodes every row (code `i` holds row
    /// `order[i]` when an order is given: an IVF section keeps its codes in list order).
    static func section(_ vectors: UnsafePointer<Float>, count: Int, dimension: Int, order: [UInt32]? = nil) -> [UInt8] {
        let q = train(vectors, count: count, dimension: dimension)
        let start = codesOffset(dimension: dimension)
        var out = [UInt8](repeating: 0, count: start + count * dimension)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(dimension).littleEndian, toByteOffset: 0, as: UInt32.self)
            for d in 0..<dimension {
                raw.storeBytes(of: q.lower[d].bitPattern.littleEndian, toByteOffset: 8 + 4 * d, as: UInt32.self)
                raw.storeBytes(of: q.step[d].bitPattern.littleEndian, toByteOffset: 8 + 4 * (dimension + d), as: UInt32.self)
            }
            let codes = raw.baseAddress!.advanced(by: start).assumingMemoryBound(to: UInt8.self)
            for r in 0..<count { q.encode(vectors + Int(order?[r] ?? UInt32(r)) * dimension, into: codes + r * dimension) }
        }
        return out
    }
}

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
            guard lo.isFinite, st.isFinite, st > 0 else { throw corrupt(8 + 4 * d, "sq8 range of dimension \(d) is not finite and positive") }
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

    init(query: UnsafePointer<Float>, quantizer q: ScalarQuantizer, metric: Metric,
         buffers: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)) {
        dimension = q.dimension
        (folded, weights) = buffers
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

/// Estimated distances from SQ8 codes, for the graph walk; the best candidates are re-ranked
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
