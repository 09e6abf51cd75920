import Foundation

/// How the terms of a text query must match.
public enum TextMatch: String, Sendable, Codable {
    /// Any term (BM25 ranks documents with more and rarer terms higher).
    case any
    /// Every term.
    case all
    /// Every term, consecutively and in order.
    case phrase
}

/// Options for a BM25 query.
public struct TextSearchOptions: Sendable {
    public var match: TextMatch
    public var filter: Filter?
    public var includeAttributes: Bool

    public init(match: TextMatch = .any, filter: Filter? = nil, includeAttributes: Bool = false) {
        self.match = match
        self.filter = filter
        self.includeAttributes = includeAttributes
    }
}

/// One full-text result.
public struct TextHit: Sendable, Equatable {
    public var id: DocumentID
    /// BM25 score; larger is better.
    public var score: Double
    public var attributes: [String: AttributeValue]?
}

/// How a hybrid query merges its vector and text rankings.
public enum Fusion: Sendable, Equatable {
    /// Reciprocal rank fusion: Σ 1 / (k + rank), rank from 1.
    case reciprocalRank(k: Int = 60)
    /// `vectorWeight · v + (1 − vectorWeight) · t`, each score min-max normalized within its list.
    case weighted(vectorWeight: Double)
}

/// Options for a hybrid (vector + BM25) query.
public struct HybridOptions: Sendable {
    public var fusion: Fusion
    /// How many candidates each ranking contributes.
    public var candidates: Int
    public var ef: Int?
    /// Applied to both rankings.
    public var filter: Filter?
    public var match: TextMatch
    public var includeAttributes: Bool

    public init(fusion: Fusion = .reciprocalRank(), candidates: Int = 100, ef: Int? = nil, filter: Filter? = nil,
                match: TextMatch = .any, includeAttributes: Bool = false) {
        self.fusion = fusion
        self.candidates = candidates
        self.ef = ef
        self.filter = filter
        self.match = match
        self.includeAttributes = includeAttributes
    }
}

/// One hybrid result with its component scores.
public struct HybridHit: Sendable, Equatable {
    public var id: DocumentID
    /// The fused score; larger is better.
    public var score: Double
    /// 1-based rank in the vector ranking, and the distance there; nil if not among its candidates.
    public var vectorRank: Int?
    public var vectorDistance: Float?
    /// 1-based rank in the BM25 ranking, and the BM25 score; nil if not among its candidates.
    public var textRank: Int?
    public var textScore: Double?
    public var attributes: [String: AttributeValue]?
}

/// Reusable dense score accumulators for BM25.
final class TextScratch {
    var scores: [Float] = []
    var matched: [UInt8] = []
    var touched: [UInt32] = []

    func prepare(rows: Int) {
        if scores.count < rows {
            scores = [Float](repeating: 0, count: rows)
            matched = [UInt8](repeating: 0, count: rows)
        }
        touched.removeAll(keepingCapacity: true)
    }

    func reset() {
        for r in touched { scores[Int(r)] = 0; matched[Int(r)] = 0 }
        touched.removeAll(keepingCapacity: true)
    }
}

final class TextScratchPool: @unchecked Sendable {
    static let shared = TextScratchPool()
    private let lock = NSLock()
    private var free: [TextScratch] = []
    func with<R>(_ body: (TextScratch) throws -> R) rethrows -> R {
        let s = lock.withLock { free.popLast() } ?? TextScratch()
        defer { s.reset(); lock.withLock { free.append(s) } }
        return try body(s)
    }
}

extension Collection {
    /// The best `k` documents for a text query by BM25 over the collection's text fields.
    public func textSearch(_ query: String, k: Int, options: TextSearchOptions = TextSearchOptions()) throws -> [TextHit] {
        try textSearchWithCost(query, k: k, options: options).hits
    }

    /// As ``textSearch(_:k:options:)``, and reports what the search cost (postings read, time).
    public func textSearchWithCost(_ query: String, k: Int, options: TextSearchOptions = TextSearchOptions()) throws -> (hits: [TextHit], cost: SearchCost) {
        let start = DispatchTime.now().uptimeNanoseconds
        guard let textConfig = config.text else {
            throw TidepoolError.invalidArgument("collection '\(name)' has no text index (CollectionConfig.text)")
        }
        guard (1...10_000).contains(k) else { throw TidepoolError.invalidArgument("k must be in 1...10000, got \(k)") }
        let filter = try options.filter?.validated(against: schema, collection: name)
        let snap = snapshot()
        var cost = SearchCost()
        let top = try bm25(snap, query: query, k: k, config: textConfig, match: options.match, filter: filter, cost: &cost)
        let hits = try top.sorted().map { item in
            let c = Int(item.key >> 32), row = Int(item.key & 0xFFFF_FFFF)
            let (id, attrs) = try self.row(snap, c, row, attributes: options.includeAttributes)
            return TextHit(id: id, score: Double(-item.dist), attributes: attrs)
        }
        cost.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return (hits, cost)
    }

    func row(_ snap: Snapshot, _ c: Int, _ r: Int, attributes: Bool) throws -> (DocumentID, [String: AttributeValue]?) {
        if c < snap.segments.count {
            let s = snap.segments[c]
            return (try s.documentID(r), attributes ? try s.attributes(r) : nil)
        }
        let m = snap.memtables[c - snap.segments.count].0
        return (m.ids[r], attributes ? m.attributes[r] : nil)
    }

    /// BM25 over a snapshot: global statistics summed over every container, then per-container
    /// scoring through the postings (segments) or the rows' stored terms (memtables).
    func bm25(_ snap: Snapshot, query: String, k: Int, config text: TextIndexConfig, match: TextMatch, filter: Filter?,
              cost: inout SearchCost) throws -> TopK {
        let queryTerms = text.analyzer.terms(query)
        var unique: [String] = []
        for t in queryTerms where !unique.contains(t) { unique.append(t) }
        var top = TopK(k: k)
        if unique.isEmpty { return top }
        let allowed = try filter.map { try allowedRows(snap, $0) }

        // Global statistics.
        var n = 0.0, tokens = 0.0
        var df = [Double](repeating: 0, count: unique.count)
        for s in snap.segments {
            guard let ti = s.text else { continue }
            n += Double(ti.rows)
            tokens += Double(ti.totalTokens)
            for (i, t) in unique.enumerated() { df[i] += Double(ti.postings(of: t).count) }
        }
        for (m, count) in snap.memtables {
            n += Double(count)
            for r in 0..<count {
                let ts = m.terms[r]
                tokens += Double(ts.count)
                for (i, t) in unique.enumerated() where ts.contains(t) { df[i] += 1 }
            }
        }
        guard n > 0 else { return top }
        let avgdl = max(tokens / n, 1e-9)
        let idf = df.map { Float(log(1 + (n - $0 + 0.5) / ($0 + 0.5))) }
        let k1 = Float(text.bm25.k1), b = Float(text.bm25.b), avg = Float(avgdl)
        let need = match == .any ? 1 : unique.count

        func admitted(_ c: Int, _ r: Int, _ dead: DeadFilter) -> Bool {
            if let allowed, !allowed[c].contains(r) { return false }
            return !dead.isDead(UInt32(r))
        }
        func phraseOK(_ terms: [String]) -> Bool {
            guard match == .phrase, queryTerms.count > 1 else { return true }
            if terms.count < queryTerms.count { return false }
            for start in 0...(terms.count - queryTerms.count) where Array(terms[start..<(start + queryTerms.count)]) == queryTerms {
                return true
            }
            return false
        }

        cost.containers += snap.segments.count + snap.memtables.count
        var postings = 0
        defer { cost.postings += postings }
        try TextScratchPool.shared.with { scratch in
            for (c, s) in snap.segments.enumerated() {
                guard let ti = s.text else { continue }
                scratch.prepare(rows: ti.rows)
                for (i, t) in unique.enumerated() {
                    let (p, count) = ti.postings(of: t)
                    postings += count
                    for j in 0..<count {
                        let r = Int(p[2 * j]), tf = Float(p[2 * j + 1])
                        let dl = Float(ti.lengths[r])
                        if scratch.matched[r] == 0 { scratch.touched.append(UInt32(r)) }
                        scratch.matched[r] &+= 1
                        scratch.scores[r] += idf[i] * tf / (tf + k1 * (1 - b + b * dl / avg))
                    }
                }
                let dead = DeadFilter(s.tombstones, visibleSeq: snap.visibleSeq)
                for r32 in scratch.touched {
                    let r = Int(r32)
                    guard Int(scratch.matched[r]) >= need, admitted(c, r, dead) else { continue }
                    let score = scratch.scores[r]
                    if -score <= top.threshold {
                        if match == .phrase, !phraseOK(text.terms(try s.attributes(r))) { continue }
                        top.push(-score, UInt64(c) << 32 | UInt64(r))
                    }
                }
                scratch.reset()
            }
        }
        for (mi, (m, count)) in snap.memtables.enumerated() {
            let c = snap.segments.count + mi
            let dead = DeadFilter(m.tombstones, visibleSeq: snap.visibleSeq)
            cost.rowsScanned += count
            for r in 0..<count where m.seqs[r] <= snap.visibleSeq && admitted(c, r, dead) {
                let ts = m.terms[r]
                var score: Float = 0, hits = 0
                let dl = Float(ts.count)
                for (i, t) in unique.enumerated() {
                    var tf: Float = 0
                    for x in ts where x == t { tf += 1 }
                    if tf > 0 {
                        hits += 1
                        score += idf[i] * tf / (tf + k1 * (1 - b + b * dl / avg))
                    }
                }
                if hits >= need && phraseOK(ts) { top.push(-score, UInt64(c) << 32 | UInt64(r)) }
            }
        }
        return top
    }

    /// One query ranked by both vector distance and BM25, fused (reciprocal rank fusion by
    /// default); filters apply to both rankings, and each hit reports its component scores.
    public func hybridSearch(vector: [Float], text query: String, k: Int, options: HybridOptions = HybridOptions()) throws -> [HybridHit] {
        try hybridSearchWithCost(vector: vector, text: query, k: k, options: options).hits
    }

    /// As ``hybridSearch(vector:text:k:options:)``, and reports what both rankings cost.
    public func hybridSearchWithCost(vector: [Float], text query: String, k: Int,
                                     options: HybridOptions = HybridOptions()) throws -> (hits: [HybridHit], cost: SearchCost) {
        let start = DispatchTime.now().uptimeNanoseconds
        guard let textConfig = config.text else {
            throw TidepoolError.invalidArgument("collection '\(name)' has no text index (CollectionConfig.text)")
        }
        guard (1...10_000).contains(k), (1...10_000).contains(options.candidates) else {
            throw TidepoolError.invalidArgument("k and candidates must be in 1...10000")
        }
        if case .weighted(let w) = options.fusion, !(0...1).contains(w) {
            throw TidepoolError.invalidArgument("weighted fusion needs a vector weight in 0...1")
        }
        let q = try validatedQuery(vector)
        let filter = try options.filter?.validated(against: schema, collection: name)
        let snap = snapshot()
        let depth = max(k, options.candidates)
        var cost = SearchCost()
        let vtop = try q.vector.withUnsafeBufferPointer {
            try searchSnapshot(snap, query: $0.baseAddress!, k: depth, options: SearchOptions(ef: options.ef, filter: filter), cost: &cost)
        }.sorted()
        var textCost = SearchCost()
        let ttop = try bm25(snap, query: query, k: depth, config: textConfig, match: options.match, filter: filter, cost: &textCost).sorted()
        let vectorContainers = cost.containers
        cost.add(textCost)
        cost.containers = max(vectorContainers, textCost.containers)   // both rankings read one snapshot

        struct Entry { var v: (rank: Int, dist: Float)?; var t: (rank: Int, score: Double)? }
        var entries: [UInt64: Entry] = [:]
        for (i, h) in vtop.enumerated() { entries[h.key, default: Entry()].v = (i + 1, h.dist) }
        for (i, h) in ttop.enumerated() { entries[h.key, default: Entry()].t = (i + 1, Double(-h.dist)) }

        func minMax(_ xs: [Double]) -> (Double, Double) { (xs.min() ?? 0, xs.max() ?? 0) }
        let (vmin, vmax) = minMax(vtop.map { -Double($0.dist) })
        let (tmin, tmax) = minMax(ttop.map { -Double($0.dist) })
        func norm(_ x: Double, _ lo: Double, _ hi: Double) -> Double { hi > lo ? (x - lo) / (hi - lo) : 1 }

        var fused: [(key: UInt64, score: Double, e: Entry)] = entries.map { key, e in
            let score: Double
            switch options.fusion {
            case .reciprocalRank(let rk):
                score = (e.v.map { 1 / Double(rk + $0.rank) } ?? 0) + (e.t.map { 1 / Double(rk + $0.rank) } ?? 0)
            case .weighted(let w):
                score = w * (e.v.map { norm(-Double($0.dist), vmin, vmax) } ?? 0)
                    + (1 - w) * (e.t.map { norm($0.score, tmin, tmax) } ?? 0)
            }
            return (key, score, e)
        }
        fused.sort { $0.score != $1.score ? $0.score > $1.score : $0.key < $1.key }
        let hits = try fused.prefix(k).map { f in
            let (id, attrs) = try row(snap, Int(f.key >> 32), Int(f.key & 0xFFFF_FFFF), attributes: options.includeAttributes)
            return HybridHit(id: id, score: f.score, vectorRank: f.e.v?.rank,
                             vectorDistance: f.e.v.map { reportedDistance($0.dist, metric: metric) },
                             textRank: f.e.t?.rank, textScore: f.e.t?.score, attributes: attrs)
        }
        cost.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return (hits, cost)
    }
}
