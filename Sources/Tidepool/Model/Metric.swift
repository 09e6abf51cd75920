/// The distance a collection ranks by, fixed at creation.
///
/// `cosine` is served by normalizing every vector to unit length at write time
/// (and each query at search time) and ranking by inner product.
public enum Metric: String, Sendable, Codable, CaseIterable {
    /// Squared Euclidean distance.
    case l2
    /// Cosine distance, reported as `1 - cos(a, b)`.
    case cosine
    /// Inner product, larger is closer; reported as the distance `-a·b`.
    case innerProduct

    var code: UInt8 {
        switch self {
        case .l2: return 0;
        case .cosine: return 1;
        case .innerProduct: return 2
        }
    }
    init?(code: UInt8) {
        switch code {
        case 0: self = .l2;
        case 1: self = .cosine;
        case 2: self = .innerProduct;
        default: return nil
        }
    }
    /// Whether the engine ranks by (negated) inner product internally.
    var usesDot: Bool { self != .l2 }

    /// Parses `l2`, `cosine`, `ip`/`innerProduct`/`inner_product`.
    public init?(name: String) {
        switch name.lowercased() {
        case "l2", "euclidean": self = .l2
        case "cosine", "cos": self = .cosine
        case "ip", "innerproduct", "inner_product", "dot": self = .innerProduct
        default: return nil
        }
    }
}
