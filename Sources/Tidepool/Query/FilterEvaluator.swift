/// A validated filter prepared for evaluating row after row (the in-memory tier's rows): `in`
/// and `notIn` lists become hash sets, so a long list costs one lookup per row, not one
/// comparison per value. It agrees with `Filter.matches`, the reference semantics.
indirect enum FilterEvaluator: Sendable {
    case and([FilterEvaluator])
    case or([FilterEvaluator])
    case not(FilterEvaluator)
    case member(String, Set<AttributeValue>, negated: Bool)
    /// Any other leaf, evaluated by the reference semantics.
    case leaf(Filter)

    init(_ filter: Filter) {
        switch filter {
        case .and(let fs): self = .and(fs.map(FilterEvaluator.init))
        case .or(let fs): self = .or(fs.map(FilterEvaluator.init))
        case .not(let f): self = .not(FilterEvaluator(f))
        case .in(let k, let vs): self = FilterEvaluator.membership(k, vs, negated: false) ?? .leaf(filter)
        case .notIn(let k, let vs): self = FilterEvaluator.membership(k, vs, negated: true) ?? .leaf(filter)
        default: self = .leaf(filter)
        }
    }

    /// A hash set of the operands, with each integer also as the float it equals (a float
    /// attribute compares with integers numerically). Short lists keep the reference evaluator.
    private static func membership(_ k: String, _ vs: [AttributeValue], negated: Bool) -> FilterEvaluator? {
        guard vs.count > 8 else { return nil }
        var set = Set(vs)
        for case .int(let i) in vs { set.insert(.float(Double(i))) }
        return .member(k, set, negated: negated)
    }

    func matches(_ attrs: [String: AttributeValue]) -> Bool {
        switch self {
        case .and(let fs): return fs.allSatisfy { $0.matches(attrs) }
        case .or(let fs): return fs.contains { $0.matches(attrs) }
        case .not(let f): return !f.matches(attrs)
        case .member(let k, let set, let negated):
            let stored = Filter.value(k, attrs) ?? .null
            let hit: Bool
            switch stored {
            // An array matches an operand equal to one of its elements (integers also as floats).
            case .stringArray(let a): hit = a.contains { set.contains(.string($0)) }
            case .intArray(let a): hit = a.contains { set.contains(.int($0)) || set.contains(.float(Double($0))) }
            case .floatArray(let a): hit = a.contains { set.contains(.float($0)) }
            case .int(let i): hit = set.contains(stored) || set.contains(.float(Double(i)))
            default: hit = set.contains(stored)
            }
            return hit != negated
        case .leaf(let f): return f.matches(attrs)
        }
    }
}
