import TidepoolKernels

/// A search of one IVF segment: rank the centroids against the query, scan the `nprobe` nearest
/// lists with the codec's own scanner, and re-score the best candidates with the f32 rows.
///
/// Flat lists are exact. SQ8 and PQ lists keep their best `rerank` estimates (default 4·k, at
/// least 40, as FAISS's IndexRefineFlat k_factor 4: residual PQ ranks well enough that 100
/// re-scored rows gave under 0.001 more recall than 40 on 1M × 128 and pypi, while each costs a
/// cache miss on the f32 rows). RaBitQ lists are scanned nearest first, so the k-th exact distance
/// tightens early and each row's lower bound decides whether it is re-scored at all.
struct IVFSearch<Admission: RowAdmission> {
    let ivf: IVFView
    let query: IndexQuery
    let nprobe: Int
    let rows: ContainerRows
    let admission: Admission
    /// The container's index in the snapshot, for result keys.
    let container: Int
    /// Brings the f32 rows of re-rank candidates (ids: rows) into memory first, when the
    /// container's rows are still arriving from object storage; nil when they are all here.
    var fetchRows: ((UnsafeBufferPointer<Neighbor>) throws -> Void)? = nil
    /// Brings the codes of the probed lists (their numbers) into memory first, when they are
    /// still arriving; nil when they are all here.
    var fetchLists: (([Int]) throws -> Void)? = nil
    /// The re-rank depth without `query.rerank`: max(perK·k, floor). A cold segment re-ranks
    /// deeper (`IVFRerankDepth.cold`): its reads go out together, so more rows cost little more
    /// time, and its codes are coarse.
    var defaultRerank: (perK: Int, floor: Int) = IVFRerankDepth.warm

    /// Whether re-rank rows come from disk (a cold segment): they are then read in rounds,
    /// nearest estimates first, and a round is read only while its estimates could still beat
    /// the k-th exact distance (`rescoreInRounds`).
    var readsInRounds = false

    /// Pushes what it finds into `found` (keys: `RowKey` of `container`).
    func run(into found: inout TopK, cost: inout SearchCost, scratch: SearchScratch) throws {
        let probes = rankLists(scratch: scratch.ivf)
        cost.listsProbed += nprobe
        if let fetchLists { try fetchLists(probes.items.map { Int($0.key) }) }
        switch ivf.codes {
        case .flat:
            scanFlat(probes, into: &found, cost: &cost)
        case .sq8(let sq8):
            var candidates = RerankCandidates(depth: rerankDepth, scratch: scratch)
            scanSQ8(sq8, probes, &candidates, &cost, scratch)
            try rerank(candidates, into: &found, cost: &cost)
        case .pq(let pq):
            var candidates = RerankCandidates(depth: rerankDepth, scratch: scratch)
            scanPQ(pq, probes, &candidates, &cost, scratch)
            try rerank(candidates, into: &found, cost: &cost)
        case .rabitq(let codes):
            scanRaBitQ(codes, probes, into: &found, cost: &cost, scratch: scratch)
        }
    }

    /// The `nprobe` lists whose centroids are nearest (list number in the key, heap order).
    private func rankLists(scratch: IVFScratch) -> TopK {
        let centroidDistances = scratch.centroidDistances.reserve(ivf.nlist)
        query.distance.batch(query.vector, ivf.centroids, count: ivf.nlist, into: centroidDistances)
        var probes = TopK(k: nprobe)
        for i in 0..<ivf.nlist where centroidDistances[i] <= probes.threshold { probes.push(centroidDistances[i], UInt64(i)) }
        return probes
    }

    @inline(__always) private func key(_ row: UInt32) -> UInt64 { RowKey(container: container, row: row).packed }

    @inline(__always) private func exact(_ row: UInt32) -> Float {
        query.distance(query.vector, rows.vectors + Int(row) * query.dimension)
    }

    private func scanFlat(_ probes: TopK, into found: inout TopK, cost: inout SearchCost) {
        let ids = ivf.rowIDs, dimension = query.dimension
        for p in probes.items {
            let list = ivf.list(Int(p.key))
            for i in list {
                if i + 4 < list.upperBound { tp_prefetch_range(rows.vectors + Int(ids[i + 4]) * dimension, dimension * 4) }
                let row = ids[i]
                guard admission.admits(row) else { continue }
                cost.distances += 1
                found.push(exact(row), key(row))
            }
        }
    }

    /// Candidates an SQ8 or PQ scan keeps for the exact re-rank.
    private var rerankDepth: Int { max(query.rerank ?? max(defaultRerank.perK * query.k, defaultRerank.floor), query.k) }

    private func rerank(_ candidates: RerankCandidates, into found: inout TopK, cost: inout SearchCost) throws {
        // An explicit `rerank` re-scores exactly that many rows; the default depth reads in rounds.
        if readsInRounds && query.rerank == nil {
            try rescoreInRounds(candidates, into: &found, cost: &cost)
            return
        }
        if let fetchRows { try fetchRows(UnsafeBufferPointer(start: candidates.heap.storage, count: candidates.heap.count)) }
        rescore(candidates, into: &found, cost: &cost)
    }

    /// The cold re-rank: candidates sorted by estimate and read in rounds of max(4·k, 40) rows
    /// (each round's reads requested together). After a round, the largest amount by which an
    /// estimate fell short of its exact distance so far (`slack`) bounds how far the estimates
    /// can be trusted; a later candidate is read only while its estimate less 1.5 × slack could
    /// still beat the k-th exact distance. An easy query reads one round; a hard one reads
    /// until the bound stops it or the candidates run out (at most the re-rank depth).
    private func rescoreInRounds(_ candidates: RerankCandidates, into found: inout TopK, cost: inout SearchCost) throws {
        var all = UnsafeMutableBufferPointer(start: candidates.heap.storage, count: candidates.heap.count)
        all.sort { $0.dist < $1.dist }
        let round = max(4 * query.k, 40)
        var next = 0, slack: Float = 0
        while next < all.count {
            var end = next
            while end < all.count && end - next < round
                && (next == 0 || all[end].dist - 1.5 * slack < found.threshold)
            {
                end += 1
            }
            if end == next { break }
            let batch = UnsafeBufferPointer(rebasing: all[next..<end])
            if let fetchRows { try fetchRows(batch) }
            var entered = 0
            for c in batch {
                let d = exact(c.id)
                slack = max(slack, c.dist - d)
                if d < found.threshold { entered += 1 }
                found.push(d, key(c.id))
            }
            cost.distances += batch.count
            next = end
            // A round none of whose rows entered the top k: the rest, estimated farther, are
            // read no more (what this costs in recall is measured in docs/COLD_TIER.md).
            if entered == 0 { break }
        }
    }

    /// Re-scores the kept candidates with their f32 rows, prefetched together first.
    private func rescore(_ candidates: RerankCandidates, into found: inout TopK, cost: inout SearchCost) {
        let heap = candidates.heap.storage
        let n = candidates.heap.count, dimension = query.dimension
        for i in 0..<n { tp_prefetch_range(rows.vectors + Int(heap[i].id) * dimension, dimension * 4) }
        for i in 0..<n {
            let row = heap[i].id
            found.push(exact(row), key(row))
        }
        cost.distances += n
    }

    private func scanSQ8(
        _ sq8: SQ8View, _ probes: TopK, _ candidates: inout RerankCandidates, _ cost: inout SearchCost,
        _ scratch: SearchScratch
    ) {
        let prepared = SQ8Query(query: query.vector, quantizer: sq8.quantizer, metric: query.metric, buffers: scratch.sq8)
        let estimate = SQ8RowDistance(query: prepared, codes: sq8.codes, kernels: tp_sq8_kernels())
        let ids = ivf.rowIDs
        for p in probes.items {
            for i in ivf.list(Int(p.key)) {
                let row = ids[i]
                guard admission.admits(row) else { continue }
                cost.quantizedDistances += 1
                candidates.offer(estimate(UInt32(i)), row)
            }
        }
    }

    private func scanPQ(
        _ pq: PQCodes, _ probes: TopK, _ candidates: inout RerankCandidates, _ cost: inout SearchCost,
        _ scratch: SearchScratch
    ) {
        var scanner = PQListScanner(
            codes: pq, query: query.vector, dimension: query.dimension, metric: query.metric,
            maxListLength: ivf.maxListLength, scratch: scratch.pq)
        let estimates = scratch.ivf.estimates.reserve(ivf.maxListLength)
        let ids = ivf.rowIDs
        for p in probes.items {
            let l = Int(p.key)
            let list = ivf.list(l)
            let bias = scanner.scan(
                list: l, rows: list, probeDistance: p.dist, centroid: ivf.centroids + l * query.dimension,
                into: estimates)
            cost.quantizedDistances += list.count
            for j in 0..<list.count where candidates.wants(estimates[j] + bias) {
                let row = ids[list.lowerBound + j]
                if admission.admits(row) { candidates.offer(estimates[j] + bias, row) }
            }
        }
    }

    private func scanRaBitQ(
        _ codes: RaBitQCodes, _ probes: TopK, into found: inout TopK, cost: inout SearchCost,
        scratch: SearchScratch
    ) {
        let scanner = RaBitQListScanner(
            codes: codes, query: query.vector, dimension: query.dimension, metric: query.metric,
            maxListLength: ivf.maxListLength, scratch: scratch.rabitq)
        let bounds = scratch.ivf.estimates.reserve(ivf.maxListLength)
        let survivors = scratch.ivf.survivorRows.reserve(ivf.maxListLength)
        let ids = ivf.rowIDs, dimension = query.dimension
        for p in probes.items.sorted(by: { $0.dist < $1.dist }) {
            let l = Int(p.key)
            let list = ivf.list(l)
            scanner.lowerBounds(list: l, rows: list, probeDistance: p.dist, into: bounds)
            cost.quantizedDistances += list.count
            // Rows whose lower bound beats the k-th exact distance so far; their f32 rows are
            // prefetched together, then re-scored while the bound still beats the (tightening) k-th.
            var n = 0
            let threshold = found.threshold
            for j in 0..<list.count where bounds[j] < threshold {
                let row = ids[list.lowerBound + j]
                guard admission.admits(row) else { continue }
                tp_prefetch_range(rows.vectors + Int(row) * dimension, dimension * 4)
                survivors[n] = row
                bounds[n] = bounds[j]  // n ≤ j: overwrites only entries already read
                n += 1
            }
            for s in 0..<n where bounds[s] < found.threshold {
                let row = survivors[s]
                cost.distances += 1
                found.push(exact(row), key(row))
            }
        }
    }
}

/// Default re-rank depths, max(perK·k, floor).
enum IVFRerankDepth {
    static let warm = (perK: 4, floor: 40)
    /// pypi-minilm-100k, PQ of 48 bytes, nprobe 128: recall 0.913 with 40 rows, 0.943 with 80,
    /// 0.951 with 120.
    static let cold = (perK: 12, floor: 120)
}

/// The best `depth` estimates seen, kept for an exact re-rank, in a max-heap over the scratch's
/// result heap (no allocation).
struct RerankCandidates {
    var heap: MaxHeap
    let depth: Int

    init(depth: Int, scratch: SearchScratch) {
        heap = MaxHeap(storage: scratch.resultHeap(depth), capacity: depth)
        self.depth = depth
    }

    /// Whether an estimate could enter (cheaper than building the offer).
    @inline(__always) func wants(_ estimate: Float) -> Bool { heap.count < depth || estimate < heap.top.dist }

    @inline(__always) mutating func offer(_ estimate: Float, _ row: UInt32) {
        if heap.count < depth {
            heap.push(Neighbor(dist: estimate, id: row))
        } else if estimate < heap.top.dist {
            heap.replaceTop(Neighbor(dist: estimate, id: row))
        }
    }
}

/// IVF's buffers in one search's scratch.
final class IVFScratch {
    /// The query's distance to every centroid.
    let centroidDistances = ScratchBuffer<Float>()
    /// A list's estimates (PQ) or lower bounds (RaBitQ).
    let estimates = ScratchBuffer<Float>()
    /// RaBitQ: a list's rows that survived the bound.
    let survivorRows = ScratchBuffer<UInt32>()
}
