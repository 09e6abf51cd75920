import TidepoolKernels

/// The distance the engine ranks by internally: squared L2, or the negated inner
/// product (cosine vectors are unit length). Smaller is always closer.
struct DistanceFunction: @unchecked Sendable {
    let pair: tp_pair_fn
    let batch: tp_batch_fn
    let negate: Bool
    let dimension: Int

    init(metric: Metric, dimension: Int, kernels: UnsafePointer<tp_f32_table> = tp_f32_kernels()) {
        let t = kernels.pointee
        negate = metric.usesDot
        pair = negate ? t.dot : t.l2sq
        batch = negate ? t.dot_batch : t.l2sq_batch
        self.dimension = dimension
    }

    @inline(__always)
    func callAsFunction(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        let d = pair(a, b, dimension)
        return negate ? -d : d
    }

    /// Distances from `q` to `count` contiguous vectors starting at `base`.
    @inline(__always)
    func batch(_ q: UnsafePointer<Float>, _ base: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>) {
        batch(q, base, count, dimension, out)
        if negate { for i in 0..<count { out[i] = -out[i] } }
    }
}

/// Converts an internal distance to the one reported to users.
@inline(__always)
func reportedDistance(_ value: Float, metric: Metric) -> Float {
    switch metric {
    case .cosine: return max(0, 1 + value)  // rounding can take 1 - cos a hair below zero
    case .l2: return max(0, value)
    default: return value
    }
}
