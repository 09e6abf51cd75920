/// The compressed copy of a segment's vectors that its graph walks read, if any.
enum CompressedVectors {
    case sq8(SQ8View)
    case f16(F16View)

    /// The collection setting that produces this kind.
    var quantization: Quantization {
        switch self {
        case .sq8: return .sq8
        case .f16: return .f16
        }
    }
}
