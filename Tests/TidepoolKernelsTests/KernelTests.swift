import TidepoolKernels
import XCTest

/// Every variant this CPU can run of a kernel family, by name ("scalar" always among them).
func runnableVariants<T>(_ named: (String) -> UnsafePointer<T>?) -> [(name: String, table: T)] {
    var count = 0
    let names = tp_kernel_variant_names(&count)
    return (0..<count).compactMap { i in
        let name = String(cString: names[i])
        return named(name).map { (name, $0.pointee) }
    }
}

/// A deterministic generator of floats in -1...1.
struct LCG {
    var s: UInt64
    mutating func next() -> Float {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1_000_000
    }
}

/// The f32 distance kernels, CRC32C and the dispatch every family shares.
final class KernelTests: XCTestCase {
    var variants: [(name: String, table: tp_f32_table)] { runnableVariants { tp_f32_kernels_named($0) } }

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

    /// Every family picks a variant the CPU can run, by the one naming scheme, and has the
    /// scalar reference; an unknown name is refused.
    func testEveryFamilyDispatchesToARunnableNamedVariant() {
        func check<T>(
            _ family: String, _ chosen: UnsafePointer<T>, _ name: (T) -> UnsafePointer<CChar>,
            _ named: (String) -> UnsafePointer<T>?
        ) {
            let chosenName = String(cString: name(chosen.pointee))
            XCTAssertEqual(named(chosenName), chosen, "\(family): dispatch chose \(chosenName), which the named lookup refuses")
            XCTAssertNotNil(named("scalar"), "\(family) lacks the scalar reference")
            XCTAssertNil(named("no-such-variant"), family)
            var count = 0
            let names = tp_kernel_variant_names(&count)
            XCTAssertTrue(
                (0..<count).contains { String(cString: names[$0]) == chosenName }, "\(family): \(chosenName) is not a listed variant name")
        }
        check("f32", tp_f32_kernels(), { $0.name }) { tp_f32_kernels_named($0) }
        check("sq8", tp_sq8_kernels(), { $0.name }) { tp_sq8_kernels_named($0) }
        check("f16", tp_f16_kernels(), { $0.name }) { tp_f16_kernels_named($0) }
        check("kmeans", tp_kmeans_kernels(), { $0.name }) { tp_kmeans_kernels_named($0) }
        check("exact", tp_exact_kernels(), { $0.name }) { tp_exact_kernels_named($0) }
        check("pq", tp_pq_kernels(), { $0.name }) { tp_pq_kernels_named($0) }
        check("rabitq", tp_rabitq_kernels(), { $0.name }) { tp_rabitq_kernels_named($0) }
        check("crc32c", tp_crc32c_kernels(), { $0.name }) { tp_crc32c_kernels_named($0) }
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
        for (name, t) in variants {
            for n in lengths {
                for offset in [0, 1, 3] {
                    let pa = a + offset, pb = b + (offset * 2) % 5
                    let r = reference(pa, pb, n)
                    let dot = Double(t.dot(pa, pb, n))
                    let l2 = Double(t.l2sq(pa, pb, n))
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
            for (_, t) in variants {
                var out = [Float](repeating: 0, count: count)
                var out2 = [Float](repeating: 0, count: count)
                base.withUnsafeBufferPointer { bp in
                    q.withUnsafeBufferPointer { qp in
                        t.dot_batch(qp.baseAddress!, bp.baseAddress!, count, dim, &out)
                        t.l2sq_batch(qp.baseAddress!, bp.baseAddress!, count, dim, &out2)
                        for r in 0..<count {
                            XCTAssertEqual(out[r], t.dot(qp.baseAddress!, bp.baseAddress! + r * dim, dim))
                            XCTAssertEqual(out2[r], t.l2sq(qp.baseAddress!, bp.baseAddress! + r * dim, dim))
                        }
                    }
                }
            }
        }
    }

    func testCRC32CKnownValueAndEveryVariantMatchesTheScalarOne() {
        let check = Array("123456789".utf8)
        let scalar = tp_crc32c_kernels_named("scalar")!.pointee.crc32c
        var rng = LCG(s: 9)
        for (name, t) in runnableVariants({ tp_crc32c_kernels_named($0) }) {
            XCTAssertEqual(t.crc32c(0, check, check.count), 0xE306_9283, name)
            for n in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099] {
                let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: Int(rng.next() * 1000)) }
                XCTAssertEqual(t.crc32c(0, bytes, n), scalar(0, bytes, n), "\(name) length \(n)")
                // Incremental equals one-shot.
                let half = n / 2
                let inc = bytes.withUnsafeBytes { p in t.crc32c(t.crc32c(0, p.baseAddress, half), p.baseAddress.map { $0 + half }, n - half)
                }
                XCTAssertEqual(inc, t.crc32c(0, bytes, n), "\(name) incremental length \(n)")
            }
        }
    }
}

/// SQ8 and f16 kernels against their scalar references.
final class CodeKernelTests: XCTestCase {
    /// SQ8 kernels: every variant against the scalar reference, on every length up to 80 and on
    /// 384, from unaligned starts.
    func testSQ8KernelsMatchScalarReference() {
        let scalar = tp_sq8_kernels_named("scalar")!.pointee
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
        for (name, t) in runnableVariants({ tp_sq8_kernels_named($0) }) {
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
                    XCTAssertEqual(Double(scalar.dot(q + shift, c + shift, n)), dot, accuracy: 1e-5 * max(1, mag))
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
        rng = LCG(s: 12)
        let maxN = 400
        let q = UnsafeMutablePointer<Float>.allocate(capacity: maxN + 8)
        let h = UnsafeMutablePointer<UInt16>.allocate(capacity: maxN + 8)
        defer { q.deallocate(); h.deallocate() }
        for i in 0..<(maxN + 8) { q[i] = rng.next(); h[i] = tp_f32_to_f16(rng.next()) }
        for (name, t) in runnableVariants({ tp_f16_kernels_named($0) }) {
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
}
