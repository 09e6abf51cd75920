import ArgumentParser
import Foundation
import Tidepool

/// `tidepool bench`: the vector benchmark by default, `tidepool bench filtered` for filters.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: vectors (default; the peers.py schema), filtered search, and full-text/hybrid.",
        subcommands: [
            BenchVectorsCommand.self, BenchFilteredCommand.self, BenchTextCommand.self, BenchKMeansCommand.self,
            BenchLimitedSweepCommand.self, BenchVersionsCommand.self,
        ],
        defaultSubcommand: BenchVectorsCommand.self)
}

/// Measures Tidepool the way `shared/bench/peers.py` measures its peers, and writes the same JSON schema.
struct BenchVectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectors",
        abstract: "Benchmark ingest, index build, reopen, and the recall/QPS trade-off against ground truth.",
        discussion: """
            Imports the base through the public API into a fresh temporary database (WAL with `batched` sync), \
            flushes it into one HNSW segment, reopens it, then sweeps ef single-threaded, one query at a time. \
            Writes the JSON schema of peers.py with entries `tidepool-hnsw` and `tidepool-flat`.
            """)

    @Option(help: "Base vectors (.fvecs or .npy).") var base: String
    @Option(help: "Query vectors.") var query: String
    @Option(help: "Ground truth (.ivecs), best first.") var gt: String
    @Option(help: "l2, cosine or ip.") var metric: String = "cosine"
    @Option(help: "Neighbours per query; recall is recall@k.") var k: Int = 10
    @Option(help: "Write the report here.") var json: String?
    @Option(help: "HNSW M.") var m: Int = HNSWParameters().m
    @Option(help: "Vectors the search reads: none (f32), sq8 (8-bit codes), f16, or pq (IVF only); compressed searches re-rank with f32.")
    var quantization: String = "none"
    @Option(help: "Index: hnsw, ivf, flat or auto (by segment size).") var index: String = "hnsw"
    @Option(help: "IVF lists (default 4·√n).") var nlist: Int?
    @Option(help: "PQ sub-spaces, code bytes per vector (default dimension / 4).") var pqSubspaces: Int?
    @Option(help: "Comma-separated nprobe values swept for IVF.") var nprobes: String = "4,8,16,24,32,48,64,96,128,192,256"
    @Option(help: "Candidates re-ranked with f32 after an SQ8 walk (default: min(ef, max(2·k, 20))).") var rerank: Int?
    @Option(help: "HNSW efConstruction.") var efConstruction: Int = 200
    @Option(help: "Threads for the index build and the batched run.") var threads: Int = 2
    @Option(help: "Repeat the sweep this many times and keep each setting's fastest pass.") var rounds: Int = 3
    @Option(help: "Comma-separated ef values.") var efs: String = "10,16,20,24,28,32,36,40,48,56,64,80,96,112,128,160,192,256,384,512"
    @Option(help: "Use only the first N queries.") var maxQueries: Int?
    @Option(help: "Queries for the exact-search measurement (0 to skip).") var flatQueries: Int = 200
    @Option(help: "Directory for the temporary database (default: the system's).") var workDir: String?
    @Option(help: "Dataset name in the report.") var dataset: String?
    @Option(help: "Keep the benchmark database here and reuse it when it exists (skips ingest and build; for profiling search).")
    var reuseDir: String?
    @Flag(help: "Skip the sustained-ingest measurement with background flushes.") var skipBackgroundIngest = false
    @Option(
        help: ArgumentHelp(
            "Run the sweep in a memory cgroup of this many MB (page cache counted; root and cgroup v1), one process per setting from a dropped page cache; reports the group's peak.",
            valueName: "MB"))
    var memoryLimit: Int?
    @Option(help: ArgumentHelp("The database's memory budget (DatabaseOptions.memoryBudget), in MB.", valueName: "MB"))
    var memoryBudget: Int?

    func run() throws {
        let metricValue = try parseMetric(metric)
        if let b = memoryBudget, b < 0 || b > 1 << 30 { throw ValidationError("--memory-budget must be 0 to \(1 << 30) MB") }
        try runReportingErrors { try measure(metricValue) }
    }

    private func measure(_ metricValue: Metric) throws {
        let baseM = try VectorFile.readVectors(base)
        var queries = try VectorFile.readVectors(query)
        var truth = try VectorFile.readIvecs(gt)
        if let mq = maxQueries { queries = queries.prefix(mq); truth = Array(truth.prefix(mq)) }
        guard truth.count >= queries.rows, truth.allSatisfy({ $0.count >= k }) else {
            throw ValidationError("ground truth has fewer rows than queries or fewer than k columns")
        }
        let n = baseM.rows, dim = baseM.dimension, nq = queries.rows
        let dir = reuseDir ?? ((workDir ?? NSTemporaryDirectory()) + "/tidepool-bench-\(getpid())")
        let reusing = reuseDir != nil && FileManager.default.fileExists(atPath: dir + "/MANIFEST")
        if !reusing { try? FileManager.default.removeItem(atPath: dir) }
        defer { if reuseDir == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let queryRows = (0..<nq).map { queries.row($0) }
        let truthSets = truth.map { Set($0.prefix(k).map { UInt64($0) }) }

        // 1. Ingest through the public API; one segment holds the whole base.
        guard let quant = Quantization(rawValue: quantization) else { throw ValidationError("--quantization must be none, sq8, f16 or pq") }
        guard let indexKind = IndexKind(rawValue: index) else { throw ValidationError("--index must be hnsw, ivf, flat or auto") }
        let config = CollectionConfig(
            hnsw: HNSWParameters(m: m, efConstruction: efConstruction, efSearch: 64),
            memtableBytes: max(64 << 20, (n + 1) * dim * 4), quantization: quant, index: indexKind,
            ivf: IVFParameters(nlist: nlist, pqSubspaces: pqSubspaces))
        let load0 = busyCPUSeconds()
        let wall0 = monotonicSeconds()
        // The build's database and collection live only inside this closure, so nothing of the
        // segment stays mapped here while a memory-limited child searches it.
        let (ingestS, buildS, indexBytes, builtIVF) = try { () throws -> (Double, Double, Int, Bool) in
            let db = try Database(
                path: dir,
                options: DatabaseOptions(syncPolicy: .batched, buildThreads: threads, memoryBudget: memoryBudget.map { $0 << 20 }))
            defer { try? db.close() }
            let coll: Collection
            var ingestS = 0.0, buildS = 0.0
            if reusing {
                coll = try db.collection("bench")
                note("reusing the database in \(dir): ingest and build figures are not measured")
            } else {
                coll = try db.createCollection("bench", dimension: dim, metric: metricValue, config: config)
                ingestS = try ingest(baseM, into: coll)
                note(String(format: "ingest: %d vectors in %.2f s = %.0f vectors/s", n, ingestS, Double(n) / ingestS))
                let t1 = monotonicSeconds()
                try coll.flush()
                buildS = monotonicSeconds() - t1
                let kind = coll.info().segments.first?.index.uppercased() ?? "no"
                note(String(format: "index build (flush to one %@ segment, %d threads): %.2f s", kind, threads, buildS))
            }
            let segments = coll.info().segments
            return (ingestS, buildS, segments.reduce(0) { $0 + $1.bytes }, segments.contains { $0.index == "ivf" })
        }()
        // What the planner built (under a budget, `auto` may choose IVF for any size).
        let isIVF = builtIVF
        if let limit = memoryLimit {
            try writeLimitedReport(
                dir: dir, limitMB: limit, isIVF: builtIVF, n: n, dim: dim, nq: nq, metric: metricValue,
                build: reusing ? nil : (buildS, ingestS), indexBytes: indexBytes)
            return
        }

        // 1b. Sustained ingest with the default configuration: memtables flush in the background
        // (building graphs on the same cores) while the upserts go on.
        var bgIngestS = 0.0, bgTotalS = 0.0
        if !reusing && !skipBackgroundIngest {
            let bgDir = dir + "-background"
            defer { try? FileManager.default.removeItem(atPath: bgDir) }
            let bgDB = try Database(path: bgDir, options: DatabaseOptions(syncPolicy: .batched, buildThreads: threads))
            let bgColl = try bgDB.createCollection(
                "bench", dimension: dim, metric: metricValue,
                config: CollectionConfig(hnsw: config.hnsw))
            let tb = monotonicSeconds()
            bgIngestS = try ingest(baseM, into: bgColl)
            try bgColl.flush()
            bgTotalS = monotonicSeconds() - tb
            let bgSegments = bgColl.info().segments.count
            try bgDB.close()
            try? FileManager.default.removeItem(atPath: bgDir)
            note(
                String(
                    format: "sustained ingest with background flush: %.0f vectors/s (%d segments, all flushed and indexed after %.1f s)",
                    Double(n) / bgIngestS, bgSegments, bgTotalS))
        }

        // 2. Reopen: time to the first result, and resident growth.
        releaseFreeHeapMemory()
        let rss0 = currentResidentBytes()
        let t2 = monotonicSeconds()
        let db = try Database(path: dir, options: DatabaseOptions(syncPolicy: .batched, buildThreads: threads))
        let coll = try db.collection("bench")
        _ = try coll.search(vector: queryRows[0], k: k, options: SearchOptions(maxThreads: 1))
        let openMS = (monotonicSeconds() - t2) * 1000
        note(String(format: "reopen to first result: %.1f ms", openMS))

        // 3. The ef sweep, one query per call, one thread.
        let efValues =
            isIVF
            ? nprobes.split(separator: ",").compactMap { Int($0) }.filter { $0 >= 1 }
            : efs.split(separator: ",").compactMap { Int($0) }.filter { $0 >= k }
        var best: [Int: (recall: Double, qps: Double, p50: Double, p99: Double, passes: Int)] = [:]
        var batchParam: Int?
        var batchQPS = 0.0, batch1QPS = 0.0, batchRecall = 0.0
        for round in 0..<rounds {
            for ef in efValues {
                let r = try sweepSetting(coll, queryRows, truthSets, ef: ef, ivf: isIVF)
                let prev = best[ef]
                if prev == nil || r.qps > prev!.qps {
                    best[ef] = (r.recall, r.qps, r.p50, r.p99, r.passes + (prev?.passes ?? 0))
                } else {
                    best[ef]!.passes += r.passes
                }
                note(
                    String(
                        format: "round %d %@=%d recall=%.4f qps=%.0f p50=%.1fus", round + 1, isIVF ? "nprobe" : "ef", ef, r.recall, r.qps,
                        r.p50))
            }
            if round == 0 { batchParam = efValues.first { best[$0]!.recall >= 0.95 } }
            if let ef = batchParam {
                let (q2, rec) = try batchRun(coll, queryRows, truthSets, ef: ef, threads: threads, ivf: isIVF)
                let (q1, _) = try batchRun(coll, queryRows, truthSets, ef: ef, threads: 1, ivf: isIVF)
                batchQPS = max(batchQPS, q2); batch1QPS = max(batch1QPS, q1); batchRecall = rec
                note(String(format: "round %d batch at ef=%d: %.0f qps with %d threads, %.0f with 1", round + 1, ef, q2, threads, q1))
            }
        }
        let residentBytes = currentResidentBytes() - rss0
        let searchResident = coll.info().segments.reduce(0) { $0 + $1.searchResidentBytes }
        let sweep: [[String: Any]] = efValues.map { ef in
            let b = best[ef]!
            return [
                "param": ef, "recall": round5(b.recall), "qps": round1(b.qps), "p50_us": round1(b.p50),
                "p99_us": round1(b.p99), "passes": b.passes,
            ]
        }
        func qpsAt(_ t: Double) -> Any {
            let v = efValues.compactMap { best[$0]!.recall >= t ? best[$0]!.qps : nil }.max()
            return v.map { round1($0) } ?? NSNull()
        }
        let wall = monotonicSeconds() - wall0
        let otherLoad = max(0, (busyCPUSeconds() - load0 - ownCPUSeconds()) / max(wall, 1e-9))
        var hnsw: [String: Any] = [
            "name": (isIVF ? "tidepool-ivf-" : "tidepool-hnsw")
                + (quant == .none ? (isIVF ? "flat" : "") : (isIVF ? "" : "-") + quant.rawValue),
            "params": isIVF
                ? [
                    "nlist": coll.info().segments.first?.ivfLists ?? 0, "metric": metricValue.rawValue,
                    "storage": quant == .none ? "f32" : quant.rawValue, "pq_subspaces": quant == .pq ? (pqSubspaces ?? dim / 4) : 0,
                    "rerank": rerank.map { $0 as Any } ?? "max(4k, 40)",
                ]
                : [
                    "M": m, "ef_construction": efConstruction, "metric": metricValue.rawValue,
                    "storage": quant == .none ? "f32" : quant.rawValue,
                    "rerank": rerank.map { $0 as Any } ?? "ef",
                ],
            "build_s": reusing ? NSNull() : round3(buildS) as Any,
            "build_vps": reusing ? NSNull() : round1(Double(n) / buildS) as Any, "build_threads": threads,
            "index_bytes": indexBytes, "index_bytes_source": "segment file bytes on disk (vectors, ids, graph)",
            "rss_growth_bytes": residentBytes, "rss_peak_growth_bytes": NSNull(),
            "knob": isIVF ? "nprobe" : "ef", "sweep": sweep,
            "qps_at_recall_0.90": qpsAt(0.90), "qps_at_recall_0.95": qpsAt(0.95), "qps_at_recall_0.99": qpsAt(0.99),
            "batch_param": batchParam.map { $0 as Any } ?? NSNull(), "batch_threads": threads,
            "batch_recall": batchParam == nil ? NSNull() : round5(batchRecall) as Any,
            "batch_qps_at_0.95": batchParam == nil ? NSNull() : round1(batchQPS) as Any,
            "batch1_qps_at_0.95": batchParam == nil ? NSNull() : round1(batch1QPS) as Any,
            "other_cpu_load": round3(otherLoad),
            "ingest_vps": reusing ? NSNull() : round1(Double(n) / ingestS) as Any, "open_to_first_result_ms": round1(openMS),
            "resident_bytes": residentBytes,
            "search_resident_bytes": searchResident,
            "search_resident_bytes_per_vector": round1(Double(searchResident) / Double(n)),
            "search_resident_bytes_source": isIVF
                ? "IVF section: centroids, list row ids, codes (plus f32 for IVF-flat)"
                : "graph + the vectors the walk reads (SQ8 codes, or f32 without quantization), from the segment sections",
        ]
        hnsw["ingest_s"] = round3(ingestS)
        if bgIngestS > 0 {
            hnsw["ingest_background_flush_vps"] = round1(Double(n) / bgIngestS)
            hnsw["ingest_background_flush_indexed_s"] = round3(bgTotalS)
        }

        // 4. Exact search, one query per call, one thread.
        var peers: [[String: Any]] = [hnsw]
        if flatQueries > 0 {
            let fq = min(flatQueries, nq)
            var lat: [Double] = []
            var hits = 0
            let tf = monotonicSeconds()
            for q in 0..<fq {
                let s = monotonicSeconds()
                let r = try coll.search(vector: queryRows[q], k: k, options: SearchOptions(exact: true, maxThreads: 1))
                lat.append((monotonicSeconds() - s) * 1e6)
                hits +=
                    r.filter {
                        if case .uint(let v) = $0.id { return truthSets[q].contains(v) }; return false
                    }.count
            }
            let flatQPS = Double(fq) / (monotonicSeconds() - tf)
            lat.sort()
            let recall = Double(hits) / Double(fq * k)
            note(String(format: "exact: recall=%.4f qps=%.1f over %d queries", recall, flatQPS, fq))
            // Batched: every query in one call (one pass over the rows), on `threads` threads and on
            // one, the fastest of `rounds` passes, as peers.py times a batch.
            func batchQPS(_ t: Int) throws -> (qps: Double, recall: Double) {
                var best = 0.0
                var found = 0
                for _ in 0..<max(1, rounds) {
                    let s = monotonicSeconds()
                    let r = try coll.search(vectors: queryRows, k: k, options: SearchOptions(exact: true, maxThreads: t))
                    best = max(best, Double(nq) / (monotonicSeconds() - s))
                    found = zip(r.hits, truthSets).reduce(0) { sum, pair in
                        sum
                            + pair.0.filter {
                                if case .uint(let v) = $0.id { return pair.1.contains(v) }; return false
                            }.count
                    }
                }
                return (best, Double(found) / Double(nq * k))
            }
            let batch = try batchQPS(threads), batch1 = try batchQPS(1)
            note(
                String(
                    format: "exact batch of %d: recall=%.4f qps=%.1f (%d threads), %.1f (1 thread)", nq, batch.recall, batch.qps, threads,
                    batch1.qps))
            peers.append([
                "name": "tidepool-flat", "params": ["metric": metricValue.rawValue, "exact": true],
                "build_s": reusing ? NSNull() : round3(ingestS) as Any,
                "build_vps": reusing ? NSNull() : round1(Double(n) / ingestS) as Any, "build_threads": 1,
                "index_bytes": indexBytes, "index_bytes_source": "segment file bytes on disk",
                "rss_growth_bytes": residentBytes, "rss_peak_growth_bytes": NSNull(), "knob": NSNull(),
                "sweep": [
                    [
                        "param": NSNull(), "recall": round5(recall), "qps": round1(flatQPS),
                        "p50_us": round1(percentile(lat, 50)), "p99_us": round1(percentile(lat, 99)), "passes": 1,
                    ]
                ],
                "qps_at_recall_0.90": recall >= 0.9 ? round1(flatQPS) : NSNull(),
                "qps_at_recall_0.95": recall >= 0.95 ? round1(flatQPS) : NSNull(),
                "qps_at_recall_0.99": recall >= 0.99 ? round1(flatQPS) : NSNull(),
                "batch_param": NSNull(), "batch_threads": threads, "batch_recall": round5(batch.recall),
                "batch_qps_at_0.95": batch.recall >= 0.95 ? round1(batch.qps) : NSNull(),
                "batch1_qps_at_0.95": batch1.recall >= 0.95 ? round1(batch1.qps) : NSNull(), "other_cpu_load": round3(otherLoad),
                "ingest_vps": reusing ? NSNull() : round1(Double(n) / ingestS) as Any, "open_to_first_result_ms": round1(openMS),
                "resident_bytes": residentBytes, "queries_measured": fq,
            ])
        }
        try db.close()

        var report = reportHeader(n: n, dim: dim, nq: nq, metric: metricValue)
        report.merge(
            [
                "threads": threads, "build_threads": threads, "rounds": rounds, "loadavg_start": loadAverage(),
                "loadavg_end": loadAverage(), "peers": peers,
            ], uniquingKeysWith: { $1 })
        try writeReport(report)
        for p in peers {
            note(
                "\(p["name"]!): qps@0.95=\(p["qps_at_recall_0.95"]!) batch(\(threads) threads)=\(p["batch_qps_at_0.95"]!) batch1=\(p["batch1_qps_at_0.95"]!) build_s=\(p["build_s"]!) ingest_vps=\(p["ingest_vps"]!) open_ms=\(p["open_to_first_result_ms"]!) resident=\(p["resident_bytes"]!)"
            )
        }
    }

    /// Options for one swept setting: ef for HNSW, nprobe for IVF.
    private func searchOptions(_ p: Int, ivf: Bool) -> SearchOptions {
        ivf ? SearchOptions(maxThreads: 1, rerank: rerank, nprobe: p) : SearchOptions(ef: p, maxThreads: 1, rerank: rerank)
    }

    /// Upserts every row in batches of 1,000 (ids are row numbers); returns the seconds taken.
    private func ingest(_ base: VectorMatrix, into coll: Collection) throws -> Double {
        let t0 = monotonicSeconds()
        var i = 0
        while i < base.rows {
            let end = min(i + 1000, base.rows)
            try coll.upsert((i..<end).map { Document(id: .uint(UInt64($0)), vector: base.row($0)) })
            i = end
        }
        return monotonicSeconds() - t0
    }

    /// One setting: 100 warm-up queries, then timed passes over all queries until 1 s is spent (1–5 passes).
    private func sweepSetting(_ coll: Collection, _ queries: [[Float]], _ truth: [Set<UInt64>], ef: Int, ivf: Bool) throws
        -> (recall: Double, qps: Double, p50: Double, p99: Double, passes: Int)
    {
        let opts = searchOptions(ef, ivf: ivf)
        for q in 0..<min(100, queries.count) { _ = try coll.search(vector: queries[q], k: k, options: opts) }
        var bestQPS = 0.0, bestLat: [Double] = [], recall = 0.0
        var spent = 0.0, passes = 0
        var lat = [Double](repeating: 0, count: queries.count)
        while passes < 5 && (passes < 1 || spent < 1.0) {
            var hits = 0
            let t0 = monotonicSeconds()
            for (qi, q) in queries.enumerated() {
                let s = monotonicSeconds()
                let r = try coll.search(vector: q, k: k, options: opts)
                lat[qi] = (monotonicSeconds() - s) * 1e6
                for h in r { if case .uint(let v) = h.id, truth[qi].contains(v) { hits += 1 } }
            }
            let dt = monotonicSeconds() - t0
            spent += dt
            passes += 1
            recall = Double(hits) / Double(queries.count * k)
            let qps = Double(queries.count) / dt
            if qps > bestQPS { bestQPS = qps; bestLat = lat }
        }
        bestLat.sort()
        return (recall, bestQPS, percentile(bestLat, 50), percentile(bestLat, 99), passes)
    }

    /// All queries split across `threads` threads, repeated until 1 s is spent (2–5 runs); the fastest run.
    private func batchRun(_ coll: Collection, _ queries: [[Float]], _ truth: [Set<UInt64>], ef: Int, threads: Int, ivf: Bool) throws
        -> (qps: Double, recall: Double)
    {
        let opts = searchOptions(ef, ivf: ivf)
        var bestQPS = 0.0, recall = 0.0, spent = 0.0, runs = 0
        let hitsBox = LockedInt()
        while runs < 5 && (runs < 2 || spent < 1.0) {
            hitsBox.set(0)
            let t0 = monotonicSeconds()
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                var hits = 0
                for qi in stride(from: t, to: queries.count, by: threads) {
                    if let r = try? coll.search(vector: queries[qi], k: k, options: opts) {
                        for h in r { if case .uint(let v) = h.id, truth[qi].contains(v) { hits += 1 } }
                    }
                }
                hitsBox.add(hits)
            }
            let dt = monotonicSeconds() - t0
            spent += dt
            runs += 1
            bestQPS = max(bestQPS, Double(queries.count) / dt)
            recall = Double(hitsBox.get()) / Double(queries.count * k)
        }
        return (bestQPS, recall)
    }
}
