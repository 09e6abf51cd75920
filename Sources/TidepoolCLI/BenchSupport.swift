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
