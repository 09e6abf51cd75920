import TidepoolKernels
import XCTest

/// The k-means assignment, PQ and RaBitQ kernels against their scalar references.
final class IndexKernelTests: XCTestCase {
    /// The assignment kernel (a blocked matrix product) against the scalar reference: same best
    /// centroid except near ties, scores within float rounding, for every remainder of 6 rows and 16 columns.
    func testAssignKernelsMatchScalarReference() {
        var rng = LCG(s: 7)
        let reference = tp_kmeans_kernels_named("scalar")!.pointee.assign
        for (name, t) in runnableVariants({ tp_kmeans_kernels_named($0) }) where name != "scalar" {
            let kernel = t.assign
            for (n, dim, k) in [(1, 4, 1), (7, 4, 17), (13, 7, 33), (37, 128, 256), (6, 96, 16), (50, 3, 255)] {
                let x = (0..<(n * dim)).map { _ in rng.next() }
                let c = (0..<(k * dim)).map { _ in rng.next() }
                var panels = [Float](repeating: 0, count: tp_panel_floats(k, dim))
                tp_pack_panels(c, k, dim, &panels)
                for alpha: Float in [-2, -1] {
                    var bias = [Float](repeating: .infinity, count: (k + 15) / 16 * 16)
                    for j in 0..<k { bias[j] = alpha == -2 ? (0..<dim).reduce(0) { $0 + c[j * dim + $1] * c[j * dim + $1] } : 0 }
                    var best1 = [Int32](repeating: -1, count: n), best2 = best1
                    var score1 = [Float](repeating: 0, count: n), score2 = score1
                    reference(x, n, dim, panels, bias, k, alpha, &best1, &score1)
                    kernel(x, n, dim, panels, bias, k, alpha, &best2, &score2)
                    for i in 0..<n {
                        XCTAssertEqual(score1[i], score2[i], accuracy: 1e-4 * Float(dim), "\(name) n=\(n) dim=\(dim) k=\(k) row \(i)")
                        XCTAssertTrue((0..<Int32(k)).contains(best2[i]))
                        if best1[i] != best2[i] {
                            // Only a near tie may differ: the kernel's choice scores as well under the reference.
                            let j = Int(best2[i])
                            let dot = (0..<dim).reduce(Float(0)) { $0 + x[i * dim + $1] * c[j * dim + $1] }
                            XCTAssertEqual(bias[j] + alpha * dot, score1[i], accuracy: 1e-4 * Float(dim))
                        }
                    }
                }
            }
        }
    }

    /// The scan against a plain sum, for widths below, at and past its 8-byte blocks and for odd
    /// and even code counts; a code scores bit-for-bit the same at any position in a list.
    func testPQScanSumsTableEntries() {
        var rng = LCG(s: 9)
        for (variant, t) in runnableVariants({ tp_pq_kernels_named($0) }) {
            let tp_pq_scan = t.scan
            for (m, n) in [(7, 33), (8, 2), (13, 5), (16, 1), (96, 41)] {
                let table = (0..<(m * 256)).map { _ in rng.next() }
                let codes = (0..<(n * m)).map { _ in UInt8(truncatingIfNeeded: Int(abs(rng.next()) * 1000)) }
                var out = [Float](repeating: 0, count: n)
                tp_pq_scan(codes, n, m, table, &out)
                for i in 0..<n {
                    let want = (0..<m).reduce(Float(0)) { $0 + table[$1 * 256 + Int(codes[i * m + $1])] }
                    XCTAssertEqual(out[i], want, accuracy: 1e-5 * Float(m), "m \(m) code \(i)")
                    var alone: Float = 0
                    Array(codes[(i * m)..<((i + 1) * m)]).withUnsafeBufferPointer { tp_pq_scan($0.baseAddress!, 1, m, table, &alone) }
                    XCTAssertEqual(alone.bitPattern, out[i].bitPattern, "\(variant) m \(m) code \(i) scores differently alone")
                }
            }
        }
    }

    /// The PQ L2 table kernel (dispatched, vectorized) against the scalar one and a direct
    /// computation, for the 4-float sub-spaces fast path and another width.
    /// Fast scan: every variant of the byte-table quantizer gives the same bytes, step and bias,
    /// within step / 2 of each entry; every variant of the blocked scan gives the scalar
    /// reference's exact sums; and bias + step · sum is within m · step / 2 of the float table sum.
    func testPQFastScanKernelsMatchScalarReferenceAndBound() {
        var rng = LCG(s: 77)
        for m in [1, 8, 32, 96, 256] {
            let table = (0..<(m * 256)).map { _ in rng.next() * 25 + 15 }
            var mins = [Float](repeating: 0, count: m), bytes = [UInt8](repeating: 0, count: m * 256)
            var bias: Float = 0
            let pq = tp_pq_kernels_named("scalar")!.pointee
            let step = pq.quantize(table, m, &mins, &bytes, &bias)
            for j in 0..<m {
                for c in 0..<256 {
                    let back = mins[j] + step * Float(bytes[j * 256 + c])
                    XCTAssertEqual(back, table[j * 256 + c], accuracy: step * 0.5001 + 1e-5, "m \(m) entry \(j), \(c)")
                }
            }
            for (name, t) in runnableVariants({ tp_pq_kernels_named($0) }) {
                let q = t.quantize
                var m2 = [Float](repeating: 0, count: m), b2 = [UInt8](repeating: 0, count: m * 256)
                var bias2: Float = 0
                let step2 = q(table, m, &m2, &b2, &bias2)
                XCTAssertEqual(step2, step, name); XCTAssertEqual(bias2, bias, name)
                XCTAssertEqual(b2, bytes, "\(name) m \(m)"); XCTAssertEqual(m2, mins, name)
            }
            for blocks in [1, 3] {
                let rows = blocks * 64
                let codes = (0..<(rows * m)).map { _ in UInt8(truncatingIfNeeded: Int(abs(rng.next()) * 1_000_000)) }  // row-major
                var blocked = [UInt8](repeating: 0, count: rows * m)
                for r in 0..<rows { for j in 0..<m { blocked[(r / 64) * 64 * m + j * 64 + r % 64] = codes[r * m + j] } }
                var ref = [UInt16](repeating: 0, count: rows)
                pq.scan_blocked(blocked, blocks, m, bytes, &ref)
                for r in 0..<rows {
                    XCTAssertEqual(Int(ref[r]), (0..<m).reduce(0) { $0 + Int(bytes[$1 * 256 + Int(codes[r * m + $1])]) })
                    let exact = (0..<m).reduce(Float(0)) { $0 + table[$1 * 256 + Int(codes[r * m + $1])] }
                    XCTAssertEqual(
                        bias + step * Float(ref[r]), exact, accuracy: Float(m) * step * 0.5 + 1e-3 * abs(exact), "m \(m) row \(r)")
                }
                for (name, t) in runnableVariants({ tp_pq_kernels_named($0) }) {
                    let scan = t.scan_blocked
                    var out = [UInt16](repeating: 0, count: rows)
                    scan(blocked, blocks, m, bytes, &out)
                    XCTAssertEqual(out, ref, "\(name) m \(m) blocks \(blocks)")
                }
            }
        }
    }

    func testPQTableKernelMatchesReference() {
        var rng = LCG(s: 11)
        for (m, ds) in [(8, 4), (5, 3)] {
            let books = (0..<(m * 256 * ds)).map { _ in rng.next() }
            var booksT = [Float](repeating: 0, count: books.count)
            var norms = [Float](repeating: 0, count: m * 256)
            for j in 0..<m {
                for c in 0..<256 {
                    for d in 0..<ds {
                        booksT[(j * ds + d) * 256 + c] = books[(j * 256 + c) * ds + d]
                        norms[j * 256 + c] += books[(j * 256 + c) * ds + d] * books[(j * 256 + c) * ds + d]
                    }
                }
            }
            let t = (0..<(m * ds)).map { _ in rng.next() }
            for (name, kernels) in runnableVariants({ tp_pq_kernels_named($0) }) {
                var out = [Float](repeating: 0, count: m * 256)
                kernels.table_l2(t, booksT, norms, m, ds, &out)
                for j in 0..<m {
                    for c in 0..<256 {
                        var want: Float = 0
                        for d in 0..<ds { let e = t[j * ds + d] - books[(j * 256 + c) * ds + d]; want += e * e }
                        XCTAssertEqual(out[j * 256 + c], want, accuracy: 1e-4, "\(name)")
                    }
                }
            }
        }
    }

    /// RaBitQ popcount sums: every variant gives the scalar reference's integers; lower bounds
    /// match it within float rounding.
    func testRaBitQKernelsMatchScalarReference() {
        var rng = LCG(s: 13)
        let reference = tp_rabitq_kernels_named("scalar")!.pointee
        for (words, n) in [(1, 7), (2, 33), (6, 64), (16, 5)] {
            let codes = (0..<(n * words)).map { _ in UInt64(bitPattern: Int64(rng.next() * 9e18)) }
            let planes = (0..<(4 * words)).map { _ in UInt64(bitPattern: Int64(rng.next() * 9e18)) }
            let factors = (0..<(4 * n)).map { i in i % 4 == 1 ? 0.5 + abs(rng.next()) : rng.next() }
            var s0 = [UInt32](repeating: 0, count: n), p0 = s0
            reference.scan(codes, n, words, planes, &s0, &p0)
            for r in 0..<n {
                var s: UInt32 = 0, p: UInt32 = 0
                for w in 0..<words {
                    let x = codes[r * words + w]
                    p += UInt32(x.nonzeroBitCount)
                    for j in 0..<4 { s += UInt32((x & planes[j * words + w]).nonzeroBitCount) << j }
                }
                XCTAssertEqual(s0[r], s); XCTAssertEqual(p0[r], p)
            }
            var l0 = [Float](repeating: 0, count: n)
            var query = tp_rabitq_query(delta: 0.1, lower: -0.7, qsum: 0.3, inv_root_d: 0.125, qnorm: 1.5, qdotc: 0.2, uses_dot: 1)
            reference.lower_bounds(s0, p0, factors, n, &query, &l0)
            for (name, t) in runnableVariants({ tp_rabitq_kernels_named($0) }) {
                var s1 = [UInt32](repeating: 0, count: n), p1 = s1, l1 = [Float](repeating: 0, count: n)
                t.scan(codes, n, words, planes, &s1, &p1)
                XCTAssertEqual(s1, s0, name); XCTAssertEqual(p1, p0, name)
                t.lower_bounds(s0, p0, factors, n, &query, &l1)
                for r in 0..<n { XCTAssertEqual(l1[r], l0[r], accuracy: 1e-4 * max(1, abs(l0[r])), "\(name) row \(r)") }
            }
        }
    }
}
