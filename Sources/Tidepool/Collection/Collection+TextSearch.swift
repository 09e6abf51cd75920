import Foundation

extension Collection {
    /// The best `k` documents for a text query by BM25 over the collection's text fields.
    public func textSearch(_ query: String, k: Int, options: TextSearchOptions = TextSearchOptions()) throws -> [TextHit] {
        try textSearchWithCost(query, k: k, options: options).hits
    }

    /// As ``textSearch(_:k:options:)``, and reports what the search cost (postings read, time).
    public func textSearchWithCost(_ query: String, k: Int, options: TextSearchOptions = TextSearchOptions()) throws -> (
        hits: [TextHit], cost: SearchCost
    ) {
        let start = DispatchTime.now().uptimeNanoseconds
        guard let textConfig = config.text else {
            throw TidepoolError.invalidArgument("collection '\(name)' has no text index (CollectionConfig.text)")
        }
        guard (1...10_000).contains(k) else { throw TidepoolError.invalidArgument("k must be in 1...10000, got \(k)") }
        let filter = try options.filter?.validated(against: schema, collection: name)
        let snap = try readSnapshot(asOf: options.asOf)
        var cost = SearchCost()
        let top = try bm25(
            snap, query: query, k: k, config: textConfig, match: options.match, filter: filter, deadline: options.deadline, cost: &cost)
        let hits = try top.sorted().map { item in
            let key = RowKey(packed: item.key)
            return TextHit(
                id: try snap.documentID(key), score: Double(-item.dist),
                attributes: options.includeAttributes ? schema.normalized(try snap.attributes(key)) : nil)
        }
        cost.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return (hits, cost)
    }

    /// Most terms (after analysis) one text query may have.
    public static var maxTextQueryTerms: Int { 1024 }

    /// BM25 over a snapshot: global statistics summed over every container, then per-container
    /// scoring through the postings (segments) or the rows' stored terms (memtables).
    func bm25(
        _ snap: Snapshot, query: String, k: Int, config text: TextIndexConfig, match: TextMatch, filter: Filter?,
        deadline: Deadline? = nil, cost: inout SearchCost
    ) throws -> TopK {
        let queryTerms = text.analyzer.terms(query)
        // Each term costs a pass over the in-memory rows' terms: a bounded query keeps one
        // request's work bounded.
        guard queryTerms.count <= Self.maxTextQueryTerms else {
            throw TidepoolError.invalidArgument(
                "a text query has at most \(Self.maxTextQueryTerms) terms, this one has \(queryTerms.count)")
        }
        var unique: [String] = []
        var seen = Set<String>()
        for t in queryTerms where seen.insert(t).inserted { unique.append(t) }
        var top = TopK(k: k)
        if unique.isEmpty { return top }
        let allowed = try filter.map { try snap.allowedRows($0, deadline: deadline) }

        // Global statistics.
        var n = 0.0, tokens = 0.0
        var df = [Double](repeating: 0, count: unique.count)
        for s in snap.segments {
            guard let ti = s.text else { continue }
            n += Double(ti.rows)
            tokens += Double(ti.totalTokens)
            for (i, t) in unique.enumerated() { df[i] += Double(ti.postings(of: t).count) }
        }
        for case .memtable(let m, let count, _) in snap.containers {
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

        cost.containers += snap.containers.count
        var postings = 0
        defer { cost.postings += postings }
        try TextScratchPool.shared.with { scratch in
            for (c, container) in snap.containers.enumerated() {
                guard case .segment(let s) = container, let ti = s.text else { continue }
                try deadline.check("full-text search")
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
                        top.push(-score, RowKey(container: c, row: UInt32(r)).packed)
                    }
                }
                scratch.reset()
            }
        }
        for (c, container) in snap.containers.enumerated() {
            guard case .memtable(let m, let count, _) = container else { continue }
            try deadline.check("full-text search")
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
                if hits >= need && phraseOK(ts) { top.push(-score, RowKey(container: c, row: UInt32(r)).packed) }
            }
        }
        return top
    }
}
