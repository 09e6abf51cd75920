/// The index a segment gets: the planner's choice for a segment of a given size under a
/// collection's settings, and what an existing segment was built with (a segment whose two
/// differ is rebuilt by compaction).
enum SegmentPlan: Equatable {
    case flat
    case hnsw(m: Int, codes: Quantization)
    case ivf(codec: IVFCodec, nlist: Int, pqSubspaces: Int)

    /// The planner. `auto`: exact scans below `minRowsForGraph` (a scan of a few thousand rows
    /// beats a walk), HNSW up to `ivf.minRows`, IVF above it (less memory per vector and a
    /// build that does not grow with n·log n); see docs/QUANTIZATION.md for the measurements.
    ///
    /// Under a memory budget (`memoryBudget`, bytes), `auto` builds a segment whose f32 rows would
    /// take more than half the budget as IVF with PQ codes (SQ8 when that is the setting), the
    /// layout the cold tier searches from disk (docs/COLD_TIER.md).
    init(rows: Int, dimension: Int, config c: CollectionConfig, memoryBudget: Int? = nil) {
        let small = rows < c.minRowsForGraph || rows < 2
        let overBudget =
            memoryBudget.map { budget in
                let (bytes, overflow) = rows.multipliedReportingOverflow(by: dimension * 4)
                return overflow || bytes > budget / 2
            } ?? false
        let kind: IndexKind
        switch c.index {
        case .flat: kind = .flat
        case .hnsw: kind = small ? .flat : .hnsw
        case .ivf: kind = small ? .flat : .ivf
        case .auto: kind = small ? .flat : (rows >= c.ivf.minRows || overBudget ? .ivf : .hnsw)
        }
        switch kind {
        case .ivf:
            let codec: IVFCodec
            switch c.quantization {
            case .none, .f16: codec = overBudget && c.index == .auto ? .pq : .flat
            case .sq8: codec = .sq8
            case .pq: codec = .pq
            case .rabitq: codec = overBudget && c.index == .auto ? .pq : .rabitq
            }
            // Under a budget, codes of dim/8 bytes (half the usual): the cold tier pins them, and
            // its deeper re-rank recovers the recall (docs/COLD_TIER.md).
            let budgeted = overBudget && c.index == .auto && c.ivf.pqSubspaces == nil
            let m =
                codec == .pq
                ? (c.ivf.pqSubspaces ?? ProductQuantizer.defaultSubspaces(dimension: budgeted ? max(1, dimension / 2) : dimension))
                : 0
            self = .ivf(codec: codec, nlist: c.ivf.lists(rows: rows), pqSubspaces: m)
        case .hnsw, .auto:
            self = .hnsw(m: c.hnsw.m, codes: c.quantization == .pq || c.quantization == .rabitq ? .none : c.quantization)
        case .flat:
            self = .flat
        }
    }
}
