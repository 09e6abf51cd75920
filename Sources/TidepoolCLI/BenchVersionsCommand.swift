import ArgumentParser
import Foundation
import Tidepool

/// Versions on real data: reads `asOf` an old version against reads of the current one, the
/// cost of a branch and a snapshot, and backup and restore throughput with a check that the
/// restored collection answers identically.
struct BenchVersionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "versions",
        abstract: "asOf search vs current search, branch and snapshot cost, backup and restore MB/s.",
        discussion: """
            Imports the base into one segment (version 1), then commits --versions more versions (each \
            re-writes 100 documents with the same vectors and flushes). Measures recall@k and single-thread \
            QPS of the current version and of version 1 searched asOf, alternating, the fastest pass of \
            --rounds each; the time and bytes written of a branch and a snapshot; the MB/s of a backup to \
            --work-dir and of the restore from it, and whether the restored collection returns the same \
            ids for every query.
            """)

    @Option(help: "Base vectors.") var base: String
    @Option(help: "Query vectors.") var query: String
    @Option(help: "Ground truth (.ivecs), best first.") var gt: String
    @Option(help: "Neighbours per query; recall is recall@k.") var k: Int = 10
    @Option(help: "HNSW beam width (default: the collection's).") var ef: Int?
    @Option(help: "Versions committed after the import.") var versions: Int = 10
    @Option(help: "Use only the first N queries.") var maxQueries: Int = 1000
    @Option(help: "Repeat each measurement this many times; keep the fastest.") var rounds: Int = 3
    @Option(help: "Threads for the index build.") var threads: Int = 2
    @Option(help: "Write the report here.") var json: String?
    @Option(help: "Directory for the temporary databases and the backup.") var workDir: String?

    func run() throws {
        try runReportingErrors { try measure() }
    }

    private func measure() throws {
        let baseM = try VectorFile.readVectors(base)
        let queries = try VectorFile.readVectors(query).prefix(maxQueries)
        let truth = try VectorFile.readIvecs(gt)
        guard truth.count >= queries.rows, truth.allSatisfy({ $0.count >= k }) else {
            throw ValidationError("ground truth has fewer rows than queries or fewer than k columns")
        }
        let n = baseM.rows, dim = baseM.dimension
        let root = (workDir ?? NSTemporaryDirectory()) + "/tidepool-bench-versions-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/db"
        let db = try Database(path: dir, options: DatabaseOptions(syncPolicy: .batched, buildThreads: threads))
        defer { try? db.close() }
        let coll = try db.createCollection(
            "bench", dimension: dim, metric: .cosine, config: CollectionConfig(memtableBytes: max(64 << 20, (n + 1) * dim * 4)))
        var i = 0
        while i < n {
            let end = min(i + 1000, n)
            try coll.upsert((i..<end).map { Document(id: .uint(UInt64($0)), vector: baseM.row($0)) })
            i = end
        }
        try coll.flush()
        let first = coll.version
        var middle: (seq: UInt64, count: Int) = (coll.info().lastSeq, coll.count)
        for v in 0..<versions {
            if v == versions / 2 {
                // A point between versions to return to: 50 of this version's writes done.
                try coll.upsert((0..<50).map { Document(id: .uint(UInt64(n + $0)), vector: baseM.row($0)) })
                middle = (coll.info().lastSeq, coll.count)
            }
            try coll.upsert(
                (0..<100).map { j in
                    let id = (v * 100 + j) % n
                    return Document(id: .uint(UInt64(id)), vector: baseM.row(id))
                })
            try coll.flush()
        }
        note("versions \(first)...\(coll.version), \(coll.info().segments.count) segments now")

        // Search: the current state against version `first`, alternating, fastest pass of each.
        let qrows = (0..<queries.rows).map { queries.row($0) }
        func recall(_ options: SearchOptions) throws -> Double {
            var hits = 0
            for (q, row) in qrows.enumerated() {
                let found = Set(
                    try coll.search(vector: row, k: k, options: options).compactMap { h -> Int? in
                        if case .uint(let id) = h.id { return Int(id) } else { return nil }
                    })
                hits += truth[q].prefix(k).filter { found.contains(Int($0)) }.count
            }
            return Double(hits) / Double(qrows.count * k)
        }
        let current = SearchOptions(ef: ef, maxThreads: 1)
        var old = current
        old.asOf = .version(first)
        let tOpen = monotonicSeconds()
        _ = try coll.search(vector: qrows[0], k: k, options: old)
        let openMS = (monotonicSeconds() - tOpen) * 1000
        var best: [String: (qps: Double, p50: Double, p99: Double)] = [:]
        for _ in 0..<rounds {
            for (name, options) in [("current", current), ("as_of", old)] {
                let r = try fastestPass(count: qrows.count, rounds: 1, maxPasses: 3) {
                    _ = try coll.search(vector: qrows[$0], k: k, options: options)
                }
                if r.qps > best[name]?.qps ?? 0 { best[name] = r }
            }
        }
        let recalls = ["current": try recall(current), "as_of": try recall(old)]
        for name in ["current", "as_of"] {
            note(String(format: "%@: recall %.4f, %.0f QPS, p50 %.1f us", name, recalls[name]!, best[name]!.qps, best[name]!.p50))
        }

        // A snapshot and branches of the whole collection.
        let tSnap = monotonicSeconds()
        try coll.createSnapshot("bench")
        let snapshotMS = (monotonicSeconds() - tSnap) * 1000
        var branches: [BranchReport] = []
        var firstUseMS: [Double] = []
        for b in 0..<5 {
            branches.append(try db.createBranch("branch\(b)", from: "bench"))
            let t = monotonicSeconds()
            _ = try db.collection("branch\(b)").count
            firstUseMS.append((monotonicSeconds() - t) * 1000)
        }
        let branchMS = branches.map { $0.seconds * 1000 }.sorted()
        for b in 0..<5 { try db.dropCollection("branch\(b)") }

        // Backup and restore, and the restored collection's answers.
        let backup = try Backup.create(source: dir, collection: "bench", destination: root + "/backup")
        let target = try Database(path: root + "/restored", options: DatabaseOptions(buildThreads: threads))
        defer { try? target.close() }
        let restore = try target.restoreBackup(from: root + "/backup")
        let copy = try target.collection("bench")
        var differing = 0
        for row in qrows {
            let a = try coll.search(vector: row, k: k, options: current).map(\.id)
            let b = try copy.search(vector: row, k: k, options: current).map(\.id)
            if a != b { differing += 1 }
        }
        note(
            String(
                format:
                    "branch %.2f ms (median of 5, %d bytes written, %d copied); snapshot %.1f ms; backup %.0f MB/s, restore %.0f MB/s; %d of %d queries differ",
                branchMS[2], branches[2].bytesWritten, branches[2].bytesCopied, snapshotMS, backup.bytesPerSecond / 1e6,
                restore.bytesPerSecond / 1e6, differing, qrows.count))
        var report: [String: Any] = [
            "dataset": URL(fileURLWithPath: base).deletingLastPathComponent().lastPathComponent, "n": n, "dim": dim,
            "nq": qrows.count, "k": k, "cpu": cpuModel(), "cores": ProcessInfo.processInfo.activeProcessorCount,
            "date": String(ISO8601DateFormatter().string(from: Date()).prefix(10)),
            "versions_back": Int(coll.version - first) - 1, "as_of_first_open_ms": round1(openMS),
            "current": [
                "recall": round5(recalls["current"]!), "qps": round1(best["current"]!.qps), "p50_us": round1(best["current"]!.p50),
            ],
            "as_of": ["recall": round5(recalls["as_of"]!), "qps": round1(best["as_of"]!.qps), "p50_us": round1(best["as_of"]!.p50)],
            "as_of_qps_ratio": round3(best["as_of"]!.qps / best["current"]!.qps),
            "branch_ms": branchMS.map(round3), "branch_bytes_written": branches[2].bytesWritten,
            "branch_first_use_ms": firstUseMS.sorted().map(round1),
            "branch_bytes_copied": branches.map(\.bytesCopied).reduce(0, +), "snapshot_ms": round1(snapshotMS),
            "backup_bytes": backup.bytes, "backup_mb_per_s": round1(backup.bytesPerSecond / 1e6),
            "restore_mb_per_s": round1(restore.bytesPerSecond / 1e6), "restored_queries_differing": differing,
        ]
        // Last, as it changes the collection: back to the point between versions.
        let tPoint = monotonicSeconds()
        try db.restoreCollection("bench", toSequence: middle.seq)
        let pointMS = (monotonicSeconds() - tPoint) * 1000
        let pointCount = try db.collection("bench").count
        note(String(format: "restore to sequence %llu: %.1f ms, %d documents (%d expected)", middle.seq, pointMS, pointCount, middle.count))
        report["point_in_time_restore_ms"] = round1(pointMS)
        report["point_in_time_documents_match"] = pointCount == middle.count
        try writeBenchReport(report, to: json)
    }
}
