import TidepoolKernels
import XCTest

/// The batched exact search kernel: every variant against the scalar reference and a sort of all
/// scores, on data whose products and sums are exact in floats (small integers), so that every
/// variant must agree bit for bit, ties included (they rank by key).
final class ExactKernelTests: XCTestCase {
    /// The heaps of `nq` queries, k each, with what the kernel needs around them.
    struct Heaps {
        var dist: [Float], keys: [UInt64], count: [UInt32], threshold: [Float]
        let k: Int, nq: Int

        init(nq: Int, k: Int) {
            self.k = k
            self.nq = nq
            dist = [Float](repeating: 0, count: nq * k)
            keys = [UInt64](repeating: 0, count: nq * k)
            count = [UInt32](repeating: 0, count: nq)
            threshold = (0..<tp_panel_floats(nq, 1)).map { $0 < nq ? Float.infinity : -Float.infinity }
        }

        mutating func scan(
            _ kernel: tp_exact_scan_fn, _ x: UnsafePointer<Float>, n: Int, dim: Int, bias: [Float], panels: [Float], alpha: Float,
            keyBase: UInt64
        ) {
            dist.withUnsafeMutableBufferPointer { d in
                keys.withUnsafeMutableBufferPointer { kk in
                    count.withUnsafeMutableBufferPointer { c in
                        threshold.withUnsafeMutableBufferPointer { t in
                            var h = tp_topk_heaps(
                                dist: d.baseAddress!, keys: kk.baseAddress!, count: c.baseAddress!, threshold: t.baseAddress!, k: k)
                            kernel(x, n, dim, bias, panels, nq, alpha, keyBase, &h)
                        }
                    }
                }
            }
        }

        /// Query j's results, best first.
        func sorted(_ j: Int) -> [(Float, UInt64)] {
            (0..<Int(count[j])).map { (dist[j * k + $0], keys[j * k + $0]) }.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        }
    }

    func testEveryVariantMatchesTheScalarReferenceAndASortOfAllScores() {
        var seed: UInt64 = 11
        func small() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(seed >> 33) % 9 - 4)
        }
        let variants = runnableVariants { tp_exact_kernels_named($0) }
        XCTAssertTrue(variants.contains { $0.name == "scalar" })
        // Rows past every tile height (6, 8) and queries past every panel group (16, 48), dimensions
        // odd and even, k larger than the rows.
        for (n, dim, nq, k) in [(1, 1, 1, 1), (13, 7, 5, 3), (50, 33, 49, 10), (97, 64, 17, 7), (9, 5, 3, 20), (200, 130, 100, 16)] {
            // One float of slack so the rows start unaligned.
            let storage = (0..<(n * dim + 1)).map { _ in small() }
            let queries = (0..<(nq * dim)).map { _ in small() }
            var panels = [Float](repeating: 0, count: tp_panel_floats(nq, dim))
            tp_pack_panels(queries, nq, dim, &panels)
            storage.withUnsafeBufferPointer { sp in
                let x = sp.baseAddress! + 1
                for alpha: Float in [-2, -1] {
                    // Every fifth row is dead (+inf); L2 biases are the squared norms.
                    let bias: [Float] = (0..<n).map { i in
                        i % 5 == 3 ? .infinity : alpha == -2 ? (0..<dim).reduce(0) { $0 + x[i * dim + $1] * x[i * dim + $1] } : 0
                    }
                    var reference = Heaps(nq: nq, k: k)
                    reference.scan(
                        tp_exact_kernels_named("scalar")!.pointee.scan, x, n: n, dim: dim, bias: bias, panels: panels, alpha: alpha,
                        keyBase: 1 << 32)
                    for j in 0..<nq {
                        var all: [(Float, UInt64)] = []
                        for i in 0..<n where bias[i].isFinite {
                            let dot = (0..<dim).reduce(Float(0)) { $0 + x[i * dim + $1] * queries[j * dim + $1] }
                            all.append((bias[i] + alpha * dot, (1 << 32) + UInt64(i)))
                        }
                        all.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
                        let want = Array(all.prefix(k))
                        let got = reference.sorted(j)
                        XCTAssertEqual(got.map(\.0), want.map(\.0), "scalar n \(n) dim \(dim) query \(j)")
                        XCTAssertEqual(got.map(\.1), want.map(\.1), "scalar n \(n) dim \(dim) query \(j)")
                    }
                    for (name, table) in variants where name != "scalar" {
                        var h = Heaps(nq: nq, k: k)
                        // In two calls over halves of the rows, as a caller scanning containers does.
                        let half = n / 2
                        h.scan(table.scan, x, n: half, dim: dim, bias: Array(bias[..<half]), panels: panels, alpha: alpha, keyBase: 1 << 32)
                        h.scan(
                            table.scan, x + half * dim, n: n - half, dim: dim, bias: Array(bias[half...]), panels: panels, alpha: alpha,
                            keyBase: (1 << 32) + UInt64(half))
                        for j in 0..<nq {
                            XCTAssertEqual(
                                h.sorted(j).map(\.0), reference.sorted(j).map(\.0), "\(name) n \(n) dim \(dim) nq \(nq) query \(j)")
                            XCTAssertEqual(
                                h.sorted(j).map(\.1), reference.sorted(j).map(\.1), "\(name) n \(n) dim \(dim) nq \(nq) query \(j)")
                        }
                    }
                }
            }
        }
    }

    /// Padding lanes past the last query never receive a row, and NaN scores never enter.
    func testPaddingLanesAndNaNStayOut() {
        for (name, table) in runnableVariants({ tp_exact_kernels_named($0) }) {
            let dim = 4, nq = 3, n = 10
            let x: [Float] = (0..<(n * dim)).map { Float($0 % 7) }
            let q: [Float] = (0..<(nq * dim)).map { Float($0 % 3) }
            var panels = [Float](repeating: 0, count: tp_panel_floats(nq, dim))
            tp_pack_panels(q, nq, dim, &panels)
            var bias = [Float](repeating: 0, count: n)
            bias[4] = .nan
            var h = Heaps(nq: nq, k: 4)
            x.withUnsafeBufferPointer {
                h.scan(table.scan, $0.baseAddress!, n: n, dim: dim, bias: bias, panels: panels, alpha: -1, keyBase: 0)
            }
            for j in 0..<nq {
                XCTAssertEqual(h.count[j], 4, name)
                XCTAssertFalse(h.sorted(j).contains { $0.1 == 4 }, "\(name): a NaN score entered")
            }
            XCTAssertTrue(h.threshold[nq...].allSatisfy { $0 == -.infinity }, "\(name) touched a padding lane")
        }
    }
}
