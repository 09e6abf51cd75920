import ArgumentParser
import Foundation
import Tidepool

/// `tidepool bench vectors --memory-limit MB`: the sweep runs in a child process per setting,
/// each inside a fresh memory cgroup with the page cache dropped first, so QPS, latency and
/// recall are what a process limited to that much memory (page cache counted) gets, and the
/// group's peak is what it used. The child loads only the queries and the ground truth.
extension BenchVectorsCommand {
    /// One child per setting of `values`; entries in the report's sweep schema plus the limit's
    /// figures. Settings run in order and stop early once recall reaches 0.99.
    func limitedSweep(dir: String, values: [Int], isIVF: Bool, limitMB: Int) throws -> (sweep: [[String: Any]], applied: Bool, why: String?)
    {
        var rows: [[String: Any]] = []
        var applied = true
        var why: String?
        for value in values {
            var group: MemoryCgroup?
            do {
                group = try MemoryCgroup.create(limitBytes: limitMB << 20, tag: "\(isIVF ? "nprobe" : "ef")\(value)")
            } catch {
                applied = false
                why = "\(error)"
            }
            defer { group?.remove() }
            if let reason = MemoryCgroup.dropPageCache() { why = why ?? reason }
            var args = [
                "bench", "limited-sweep", "--dir", dir, "--query", query, "--gt", gt, "--k", String(k),
                isIVF ? "--nprobe" : "--ef", String(value),
            ]
            if let mq = maxQueries { args += ["--max-queries", String(mq)] }
            if let rerank { args += ["--rerank", String(rerank)] }
            if let b = memoryBudget { args += ["--memory-budget", String(b)] }
            let out = try MemoryCgroup.runChild(args, in: group)
            guard var row = (try? JSONSerialization.jsonObject(with: out)) as? [String: Any] else {
                throw ValidationError("the limited search printed no report: \(String(decoding: out, as: UTF8.self))")
            }
            row["param"] = value
            row["cgroup_peak_bytes"] = group?.peakBytes ?? NSNull()
            row["cgroup_limit_hits"] = group?.limitHits ?? NSNull()
            note(
                "limit \(limitMB) MB \(isIVF ? "nprobe" : "ef")=\(value): recall=\(row["recall"]!) qps=\(row["qps"]!) "
                    + "p50=\(row["p50_us"]!)us p99=\(row["p99_us"]!)us first pass qps=\(row["first_pass_qps"]!) "
                    + "peak=\((group?.peakBytes ?? 0) >> 20) MB")
            rows.append(row)
            if let r = row["recall"] as? Double, r >= 0.99 { break }
        }
        return (rows, applied, why)
    }
}

extension BenchVectorsCommand {
    /// Writes the report of a memory-limited run: one entry whose sweep came from `limitedSweep`.
    func writeLimitedReport(
        dir: String, limitMB: Int, isIVF: Bool, n: Int, dim: Int, nq: Int, metric: Metric, build: (build: Double, ingest: Double)?,
        indexBytes: Int
    ) throws {
        guard limitMB >= 8 && limitMB <= 1 << 20 else { throw ValidationError("--memory-limit must be 8 to \(1 << 20) MB") }
        let values =
            isIVF
            ? nprobes.split(separator: ",").compactMap { Int($0) }.filter { $0 >= 1 }
            : efs.split(separator: ",").compactMap { Int($0) }.filter { $0 >= k }
        let (sweep, applied, why) = try limitedSweep(dir: dir, values: values, isIVF: isIVF, limitMB: limitMB)
        if let why { note("note: \(why)") }
        func qpsAt(_ t: Double) -> Any {
            sweep.compactMap { ($0["recall"] as? Double ?? 0) >= t ? $0["qps"] as? Double : nil }.max() ?? NSNull()
        }
        let peaks = sweep.compactMap { $0["cgroup_peak_bytes"] as? Int }
        let entry: [String: Any] = [
            "name": "tidepool-\(isIVF ? "ivf" : "hnsw")-\(quantization)-limit\(limitMB)mb",
            "params": [
                "index": isIVF ? "ivf" : "hnsw", "storage": quantization, "memory_budget_mb": memoryBudget.map { $0 as Any } ?? NSNull(),
                "rerank": rerank.map { $0 as Any } ?? "default",
            ],
            "build_s": build.map { round3($0.build) as Any } ?? NSNull(), "index_bytes": indexBytes,
            "index_bytes_source": "segment file bytes on disk",
            "memory_limit_bytes": limitMB << 20, "memory_limit_applied": applied, "memory_limit_note": why ?? NSNull(),
            "memory_source":
                "cgroup v1 memory.max_usage_in_bytes of a fresh group per setting (page cache counted), after dropping the page cache",
            "cgroup_peak_bytes_max": peaks.max() ?? NSNull(),
            "knob": isIVF ? "nprobe" : "ef", "sweep": sweep,
            "qps_at_recall_0.90": qpsAt(0.90), "qps_at_recall_0.95": qpsAt(0.95), "qps_at_recall_0.99": qpsAt(0.99),
            "ingest_vps": build.map { round1(Double(n) / $0.ingest) as Any } ?? NSNull(),
        ]
        var report = reportHeader(n: n, dim: dim, nq: maxQueries.map { min($0, nq) } ?? nq, metric: metric)
        report["threads"] = 1
        report["peers"] = [entry]
        try writeReport(report)
    }
}

/// The child of `bench vectors --memory-limit`: opens the benchmark database read-only, runs
/// every query once from a cold page cache (the first pass) and again (the steady pass), and
/// prints one JSON object: recall, QPS, p50/p99 of the steady pass, the first pass's QPS, and
/// the process's own peak resident size.
struct BenchLimitedSweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limited-sweep", abstract: "One setting of a memory-limited sweep (run by `bench vectors --memory-limit`).",
        shouldDisplay: false)

    @Option var dir: String
    @Option var query: String
    @Option var gt: String
    @Option var k: Int = 10
    @Option var ef: Int?
    @Option var nprobe: Int?
    @Option var rerank: Int?
    @Option var maxQueries: Int?
    @Option var memoryBudget: Int?
    @Option var passes: Int = 2

    func run() throws {
        try runReportingErrors {
            var queries = try VectorFile.readVectors(query)
            var truth = try VectorFile.readIvecs(gt)
            if let mq = maxQueries { queries = queries.prefix(mq); truth = Array(truth.prefix(mq)) }
            let truthSets = truth.map { Set($0.prefix(k).map { UInt64($0) }) }
            let rows = (0..<queries.rows).map { queries.row($0) }
            truth = []
            let anonBeforeOpen = statusBytes("RssAnon:")
            let options = DatabaseOptions(readOnly: true, memoryBudget: memoryBudget.map { $0 << 20 })
            let db = try Database(path: dir, options: options)
            defer { try? db.close() }
            let coll = try db.collection("bench")
            let anonAfterOpen = statusBytes("RssAnon:")
            let opts = SearchOptions(ef: ef, maxThreads: 1, rerank: rerank, nprobe: nprobe)
            var lat = [Double](repeating: 0, count: rows.count)
            var firstQPS = 0.0, qps = 0.0, hits = 0
            for pass in 0..<max(1, passes) {
                hits = 0
                let t0 = monotonicSeconds()
                for (i, q) in rows.enumerated() {
                    let s = monotonicSeconds()
                    let r = try coll.search(vector: q, k: k, options: opts)
                    lat[i] = (monotonicSeconds() - s) * 1e6
                    for h in r { if case .uint(let v) = h.id, truthSets[i].contains(v) { hits += 1 } }
                }
                qps = Double(rows.count) / (monotonicSeconds() - t0)
                if pass == 0 { firstQPS = qps }
            }
            lat.sort()
            emit(
                jsonLine([
                    "recall": round5(Double(hits) / Double(rows.count * k)), "qps": round1(qps), "p50_us": round1(percentile(lat, 50)),
                    "p99_us": round1(percentile(lat, 99)), "first_pass_qps": round1(firstQPS), "passes": max(1, passes),
                    "process_peak_rss_bytes": statusBytes("VmHWM:"), "anon_before_open_bytes": anonBeforeOpen,
                    "anon_after_open_bytes": anonAfterOpen, "anon_at_end_bytes": statusBytes("RssAnon:"),
                    "shared_library_rss_bytes": sharedLibraryResidentBytes(),
                    "tiers": coll.info().segments.map { $0.tier.rawValue },
                ]))
        }
    }
}

/// Resident bytes of the shared libraries this process maps (the Swift runtime and Foundation),
/// which a memory cgroup charges to whichever process brought them in first.
func sharedLibraryResidentBytes() -> Int {
    // Read to the end: procfs reports a size of 0, so a read by size gets nothing.
    guard let data = FileHandle(forReadingAtPath: "/proc/self/smaps")?.readDataToEndOfFile() else { return 0 }
    let s = String(decoding: data, as: UTF8.self)
    var total = 0, inLibrary = false
    for line in s.split(separator: "\n") {
        if let first = line.first, first.isHexDigit, line.contains("-") && line.split(separator: " ").count >= 5 {
            inLibrary = line.hasSuffix(".so") || line.contains(".so.")
        } else if inLibrary && line.hasPrefix("Rss:") {
            total += (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
    }
    return total
}

/// A size from this process's /proc status (`VmHWM:`, `RssAnon:`, …), in bytes.
func statusBytes(_ field: String) -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix(field) {
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }
    return 0
}
