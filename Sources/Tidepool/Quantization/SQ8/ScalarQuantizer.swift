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
