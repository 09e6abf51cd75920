import Foundation
import Tidepool

/// Times `count` queries (`body(i)` runs query i) in passes: per round at least 2 passes and up to
/// `maxPasses` until 1 s is spent, `rounds` rounds. Returns the fastest pass's QPS and its p50/p99
/// latency in microseconds.
func fastestPass(count: Int, rounds: Int, maxPasses: Int, _ body: (Int) throws -> Void) rethrows
    -> (qps: Double, p50: Double, p99: Double)
{
    var best = 0.0, bestLat: [Double] = []
    var lat = [Double](repeating: 0, count: count)
    for _ in 0..<rounds {
        var spent = 0.0, passes = 0
        while passes < 2 || (spent < 1 && passes < maxPasses) {
            let t0 = monotonicSeconds()
            for i in 0..<count {
                let s = monotonicSeconds()
                try body(i)
                lat[i] = (monotonicSeconds() - s) * 1e6
            }
            let dt = monotonicSeconds() - t0
            spent += dt
            passes += 1
            if Double(count) / dt > best { best = Double(count) / dt; bestLat = lat }
        }
    }
    bestLat.sort()
    return (best, percentile(bestLat, 50), percentile(bestLat, 99))
}

final class LockedInt: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func set(_ v: Int) { lock.withLock { value = v } }
    func add(_ v: Int) { lock.withLock { value += v } }
    func get() -> Int { lock.withLock { value } }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    // Linear interpolation, as numpy.percentile does by default.
    let x = Double(sorted.count - 1) * p / 100
    let lo = Int(x.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - Double(lo))
}

func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }
func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
func round5(_ x: Double) -> Double { (x * 100_000).rounded() / 100_000 }

func cpuModel() -> String {
    guard let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    for line in s.split(separator: "\n") where line.hasPrefix("model name") {
        return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
    }
    return "unknown"
}

func loadAverage() -> Double {
    var l = [Double](repeating: 0, count: 3)
    return getloadavg(&l, 3) > 0 ? l[0] : 0
}

/// CPU seconds the whole machine has been busy since boot (from /proc/stat), as peers.py counts them.
func busyCPUSeconds() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
        let first = s.split(separator: "\n").first
    else { return 0 }
    let f = first.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard f.count >= 8 else { return 0 }
    let busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7]
    return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func ownCPUSeconds() -> Double {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

extension BenchVectorsCommand {
    /// The fields every vector report starts with (peers.py's schema).
    func reportHeader(n: Int, dim: Int, nq: Int, metric: Metric) -> [String: Any] {
        [
            "dataset": dataset ?? URL(fileURLWithPath: base).deletingLastPathComponent().lastPathComponent,
            "n": n, "dim": dim, "nq": nq, "metric": metric == .innerProduct ? "ip" : metric.rawValue, "k": k,
            "ground_truth": "file \(gt)", "versions": ["tidepool": tidepoolReleaseVersion, "kernels": simdKernelName], "cpu": cpuModel(),
            "cores": ProcessInfo.processInfo.activeProcessorCount, "date": String(ISO8601DateFormatter().string(from: Date()).prefix(10)),
        ]
    }

    /// Writes the report to `--json`, or to standard output without it.
    func writeReport(_ report: [String: Any]) throws { try writeBenchReport(report, to: json) }
}

/// Writes a benchmark report as one JSON line to `path`, or to standard output without one.
func writeBenchReport(_ report: [String: Any], to path: String?) throws {
    let text = jsonLine(report)
    if let path {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        note("wrote \(path)")
    } else {
        emit(text)
    }
}
