import TidepoolKernels
import XCTest

final class KernelTests: XCTestCase {
    /// Every variant this CPU can run.
    var variants: [UnsafePointer<tp_kernel_table>] {
        let names: [String] = ["scalar", "avx2-fma", "avx512f", "neon"]
        return names.compactMap { tp_kernels_named($0) }
    }

    struct LCG {
        var s: UInt64
        mutating func next() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
    }

    func reference(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> (dot: Double, l2: Double, mag: Double) {
        var dot = 0.0, l2 = 0.0, mag = 0.0
        for i in 0..<n {
            dot += Double(a[i]) * Double(b[i])
            let d = Double(a[i]) - Double(b[i])
            l2 += d * d
            mag += abs(Double(a[i]) * Double(b[i]))
        }
        return (dot, l2, mag)
    }

    func testDispatchPicksAVariantTheCPUCanRun() {
        let name = String(cString: tp_kernels().pointee.name)
        XCTAssertNotNil(tp_kernels_named(name), "dispatch chose \(name), which tp_kernels_named refuses")
        XCTAssertTrue(variants.count >= 1)
    }

    func testPairKernelsMatchReferenceOnOddLengthsAndUnalignedInputs() {
        var rng = LCG(s: 42)
        let maxN = 1537
        // Extra slack so inputs can start at any float offset (unaligned for SIMD).
        let a = UnsafeMutablePointer<Float>.allocate(capacity: maxN + 8)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: maxN + 8)
        defer { a.deallocate(); b.deallocate() }
        for i in 0..<(maxN + 8) { a[i] = rng.next(); b[i] = rng.next() }
        let lengths = Array(1...130) + Array(stride(from: 131, through: maxN, by: 17)) + [383, 384, 385, 1535, 1536, 1537]
        for t in variants {
            let name = String(cString: t.pointee.name)
            for n in lengths {
                for offset in [0, 1, 3] {
                    let pa = a + offset, pb = b + (offset * 2) % 5
                    let r = reference(pa, pb, n)
                    let dot = Double(t.pointee.dot(pa, pb, n))
                    let l2 = Double(t.pointee.l2sq(pa, pb, n))
                    XCTAssertEqual(dot, r.dot, accuracy: 1e-5 * max(1, r.mag), "\(name) dot n=\(n) offset=\(offset)")
                    XCTAssertEqual(l2, r.l2, accuracy: 1e-5 * max(1, r.l2), "\(name) l2sq n=\(n) offset=\(offset)")
                }
            }
        }
    }

    func testBatchKernelsEqualPairKernels() {
        var rng = LCG(s: 7)
        for dim in [1, 7, 16, 100, 384, 1537] {
            let count = 37
            let q = (0..<dim).map { _ in rng.next() }
            let base = (0..<(dim * count)).map { _ in rng.next() }
            for t in variants {
                var out = [Float](repeating: 0, count: count)
                var out2 = [Float](repeating: 0, count: count)
                base.withUnsafeBufferPointer { bp in
                    q.withUnsafeBufferPointer { qp in
                        t.pointee.dot_batch(qp.baseAddress!, bp.baseAddress!, count, dim, &out)
                        t.pointee.l2sq_batch(qp.baseAddress!, bp.baseAddress!, count, dim, &out2)
                        for r in 0..<count {
                            XCTAssertEqual(out[r], t.pointee.dot(qp.baseAddress!, bp.baseAddress! + r * dim, dim))
                            XCTAssertEqual(out2[r], t.pointee.l2sq(qp.baseAddress!, bp.baseAddress! + r * dim, dim))
                        }
                    }
                }
            }
        }
    }

    func testCRC32CKnownValueAndHardwareMatchesSoftware() {
        let check = Array("123456789".utf8)
        XCTAssertEqual(tp_crc32c(0, check, check.count), 0xE306_9283)
        XCTAssertEqual(tp_crc32c_scalar(0, check, check.count), 0xE306_9283)
        var rng = LCG(s: 9)
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099] {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: Int(rng.next() * 1000)) }
            XCTAssertEqual(tp_crc32c(0, bytes, n), tp_crc32c_scalar(0, bytes, n), "length \(n)")
            // Incremental equals one-shot.
            let half = n / 2
            let inc = bytes.withUnsafeBytes { p in
                tp_crc32c(tp_crc32c(0, p.baseAddress, half), p.baseAddress.map { $0 + half }, n - half)
            }
            XCTAssertEqual(inc, tp_crc32c(0, bytes, n), "incremental length \(n)")
        }
    }

    /// SQ8 kernels: every variant against the scalar reference, on every length up to 80 and on
    /// 384, from unaligned starts.
    func testSQ8KernelsMatchScalarReference() {
        let names: [String] = ["scalar", "avx2-fma", "avx512f", "neon"]; let usable = names.filter { tp_sq8_kernels_named($0) != nil }
        XCTAssertTrue(usable.contains(String(cString: tp_sq8_kernels().pointee.name)), "dispatch chose a variant the CPU cannot run")
        var rng = LCG(s: 7)
        let maxN = 400
        let q = UnsafeMutablePointer<Float>.allocate(capacity: maxN + 8)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: maxN + 8)
        let c = UnsafeMutablePointer<UInt8>.allocate(capacity: maxN + 8)
        defer { q.deallocate(); w.deallocate(); c.deallocate() }
        for i in 0..<(maxN + 8) {
            q[i] = rng.next() * 300
            w[i] = abs(rng.next()) * 0.01
            c[i] = UInt8(truncatingIfNeeded: Int(abs(rng.next()) * 1_000_000))
        }
        for name in usable {
            let t = tp_sq8_kernels_named(name)!.pointee
            for n in Array(0...80) + [384] {
                for shift in [0, 1, 3] {
                    var dot = 0.0, l2 = 0.0, mag = 0.0
                    for i in 0..<n {
                        let cv = Double(c[shift + i])
                        dot += Double(q[shift + i]) * cv
                        mag += abs(Double(q[shift + i]) * cv)
                        let d = Double(q[shift + i]) - cv
                        l2 += Double(w[shift + i]) * d * d
                    }
                    let gotDot = Double(t.dot(q + shift, c + shift, n))
                    let gotL2 = Double(t.l2(q + shift, w + shift, c + shift, n))
                    XCTAssertEqual(gotDot, dot, accuracy: 1e-5 * max(1, mag), "\(name) sq8 dot n=\(n) shift=\(shift)")
                    XCTAssertEqual(gotL2, l2, accuracy: 1e-5 * max(1, l2), "\(name) sq8 l2 n=\(n) shift=\(shift)")
                    XCTAssertEqual(Double(tp_sq8_dot_scalar(q + shift, c + shift, n)), dot, accuracy: 1e-5 * max(1, mag))
                }
            }
        }
    }

    /// f16 conversion round-trips every binary16 value and rounds f32 to nearest even; the f16
    /// kernels match the scalar reference.
    func testF16ConversionAndKernelsMatchScalarReference() {
        for h in 0...0xFFFF {
            let f = tp_f16_to_f32(UInt16(h))
            if f.isNaN { XCTAssertTrue(tp_f32_to_f16(f) & 0x7C00 == 0x7C00 && tp_f32_to_f16(f) & 0x3FF != 0); continue }
            XCTAssertEqual(tp_f32_to_f16(f), UInt16(h), "round trip of \(h)")
        }
        var rng = LCG(s: 11)
        #if arch(x86_64) || arch(arm64)
        for _ in 0..<200_000 {
            let x = rng.next() * 70_000
            XCTAssertEqual(tp_f32_to_f16(x), Float16(x).bitPattern, "\(x)")
            let tiny = rng.next() * 1e-4
            XCTAssertEqual(tp_f32_to_f16(tiny), Float16(tiny).bitPattern, "\(tiny)")
        }
        #endif
        let names: [String] = ["scalar", "avx2-fma", "avx512f", "neon"]
        let usable = names.filter { tp_f16_kernels_named($0) != nil }
        XCTAssertTrue(usable.contains(String(cString: tp_f16_kernels().pointee.name)))
        rng = LCG(s: 12)
        let maxN = 400
        let q = UnsafeMutablePointer<Float>.allocate(capacity: maxN + 8)
        let h = UnsafeMutablePointer<UInt16>.allocate(capacity: maxN + 8)
        defer { q.deallocate(); h.deallocate() }
        for i in 0..<(maxN + 8) { q[i] = rng.next(); h[i] = tp_f32_to_f16(rng.next()) }
        for name in usable {
            let t = tp_f16_kernels_named(name)!.pointee
            for n in Array(0...80) + [384] {
                for shift in [0, 1, 3] {
                    var dot = 0.0, l2 = 0.0, mag = 0.0
                    for i in 0..<n {
                        let x = Double(tp_f16_to_f32(h[shift + i])), y = Double(q[shift + i])
                        dot += x * y; mag += abs(x * y); l2 += (x - y) * (x - y)
                    }
                    XCTAssertEqual(Double(t.dot(q + shift, h + shift, n)), dot, accuracy: 1e-5 * max(1, mag), "\(name) f16 dot n=\(n)")
                    XCTAssertEqual(Double(t.l2(q + shift, h + shift, n)), l2, accuracy: 1e-5 * max(1, l2), "\(name) f16 l2 n=\(n)")
                }
            }
        }
    }

    /// The assignment kernel (a blocked matrix product) against the scalar reference: same best
    /// centroid except near ties, scores within float rounding, for every remainder of 6 rows and 16 columns.
    func testAssignKernelsMatchScalarReference() {
        var rng = LCG(s: 7)
        for name in ["avx2-fma", "avx512f", "neon"] {
            guard let kernel = tp_assign_named(name) else { continue }
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
                    tp_assign_scalar(x, n, dim, panels, bias, k, alpha, &best1, &score1)
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
                XCTAssertEqual(alone.bitPattern, out[i].bitPattern, "m \(m) code \(i) scores differently alone")
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
            let step = tp_pq_quantize_table_scalar(table, m, &mins, &bytes, &bias)
            for j in 0..<m {
                for c in 0..<256 {
                    let back = mins[j] + step * Float(bytes[j * 256 + c])
                    XCTAssertEqual(back, table[j * 256 + c], accuracy: step * 0.5001 + 1e-5, "m \(m) entry \(j), \(c)")
                }
            }
            for name in ["scalar", "avx2", "avx512"] {
                guard let q = tp_pq_quantize_named(name) else { continue }
                var m2 = [Float](repeating: 0, count: m), b2 = [UInt8](repeating: 0, count: m * 256)
                var bias2: Float = 0
                let step2 = q(table, m, &m2, &b2, &bias2)
                XCTAssertEqual(step2, step, name); XCTAssertEqual(bias2, bias, name)
                XCTAssertEqual(b2, bytes, "\(name) m \(m)"); XCTAssertEqual(m2, mins, name)
            }
            for blocks in [1, 3] {
                let rows = blocks * 64
                let codes = (0..<(rows * m)).map { _ in UInt8(truncatingIfNeeded: Int(abs(rng.next()) * 1_000_000)) }   // row-major
                var blocked = [UInt8](repeating: 0, count: rows * m)
                for r in 0..<rows { for j in 0..<m { blocked[(r / 64) * 64 * m + j * 64 + r % 64] = codes[r * m + j] } }
                var ref = [UInt16](repeating: 0, count: rows)
                tp_pq_scan_blocked_scalar(blocked, blocks, m, bytes, &ref)
                for r in 0..<rows {
                    XCTAssertEqual(Int(ref[r]), (0..<m).reduce(0) { $0 + Int(bytes[$1 * 256 + Int(codes[r * m + $1])]) })
                    let exact = (0..<m).reduce(Float(0)) { $0 + table[$1 * 256 + Int(codes[r * m + $1])] }
                    XCTAssertEqual(bias + step * Float(ref[r]), exact, accuracy: Float(m) * step * 0.5 + 1e-3 * abs(exact), "m \(m) row \(r)")
                }
                for name in ["scalar", "avx512vbmi"] {
                    guard let scan = tp_pq_scan_blocked_named(name) else { continue }
                    var out = [UInt16](repeating: 0, count: rows)
                    scan(blocked, blocks, m, bytes, &out)
                    XCTAssertEqual(out, ref, "\(name) m \(m) blocks \(blocks)")
                }
            }
        }
        XCTAssertNotNil(tp_pq_scan_blocked_kernel())
        XCTAssertNotNil(tp_pq_quantize_kernel())
    }

    func testPQTableKernelMatchesReference() {
        var rng = LCG(s: 11)
        for (m, ds) in [(8, 4), (5, 3)] {
            let books = (0..<(m * 256 * ds)).map { _ in rng.next() }
            var booksT = [Float](repeating: 0, count: books.count)
            var norms = [Float](repeating: 0, count: m * 256)
            for j in 0..<m { for c in 0..<256 { for d in 0..<ds {
                booksT[(j * ds + d) * 256 + c] = books[(j * 256 + c) * ds + d]
                norms[j * 256 + c] += books[(j * 256 + c) * ds + d] * books[(j * 256 + c) * ds + d]
            } } }
            let t = (0..<(m * ds)).map { _ in rng.next() }
            var fast = [Float](repeating: 0, count: m * 256), slow = fast
            tp_pq_table_l2_kernel()(t, booksT, norms, m, ds, &fast)
            tp_pq_table_l2_scalar(t, booksT, norms, m, ds, &slow)
            for j in 0..<m {
                for c in 0..<256 {
                    var want: Float = 0
                    for d in 0..<ds { let e = t[j * ds + d] - books[(j * 256 + c) * ds + d]; want += e * e }
                    XCTAssertEqual(fast[j * 256 + c], want, accuracy: 1e-4)
                    XCTAssertEqual(slow[j * 256 + c], want, accuracy: 1e-4)
                }
            }
        }
    }
}
