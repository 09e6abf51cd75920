import Foundation
import TidepoolKernels
import XCTest

@testable import Tidepool

/// k-means, product quantization and IVF segments.
final class IVFTests: XCTestCase {
    private func flat(_ rows: [[Float]]) -> [Float] { rows.flatMap { $0 } }

    func testKMeansIsDeterministicForASeedWhateverTheThreadCountAndAssignsToTheNearestCentroid() {
        let dim = 24, n = 5000, k = 37
        let x = flat(clusteredVectors(n, dim, clusters: 30, seed: 3))
        let a = x.withUnsafeBufferPointer {
            KMeans(k: k, iterations: 8, seed: 9, threads: 1).train($0.baseAddress!, count: n, dimension: dim)
        }
        let b = x.withUnsafeBufferPointer {
            KMeans(k: k, iterations: 8, seed: 9, threads: 2).train($0.baseAddress!, count: n, dimension: dim)
        }
        let c = x.withUnsafeBufferPointer {
            KMeans(k: k, iterations: 8, seed: 10, threads: 2).train($0.baseAddress!, count: n, dimension: dim)
        }
        XCTAssertEqual(a.centroids, b.centroids, "same seed, different thread counts")
        XCTAssertNotEqual(a.centroids, c.centroids, "another seed gives another start")
        XCTAssertEqual(a.centroids.count, k * dim)
        // Lloyd never increases the error: more iterations do at least as well.
        let one = x.withUnsafeBufferPointer {
            KMeans(k: k, iterations: 1, seed: 9, threads: 2).train($0.baseAddress!, count: n, dimension: dim)
        }
        XCTAssertLessThanOrEqual(a.meanSquaredError, one.meanSquaredError * 1.0001)
        // Assignment against a brute-force nearest centroid (ties aside).
        var assignment = [Int32](repeating: -1, count: n)
        _ = x.withUnsafeBufferPointer {
            KMeans.assign(
                $0.baseAddress!, count: n, dimension: dim, centroids: a.centroids, k: k, innerProduct: false, threads: 2, into: &assignment)
        }
        for i in stride(from: 0, to: n, by: 7) {
            let p = Array(x[i * dim..<(i + 1) * dim])
            let d = (0..<k).map { referenceDistance(p, Array(a.centroids[$0 * dim..<($0 + 1) * dim]), .l2) }
            let best = d.min()!
            XCTAssertLessThanOrEqual(d[Int(assignment[i])], best + 1e-3 * max(1, best), "point \(i)")
        }
    }

    func testPublicKMeansValidatesItsArguments() {
        let x: [Float] = [1, 2, 3]
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { try kMeansCentroids($0, dimension: 2, k: 1) })
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { try kMeansCentroids($0, dimension: 3, k: 0) })
        XCTAssertEqual(try x.withUnsafeBufferPointer { try kMeansCentroids($0, dimension: 3, k: 2) }.centroids.count, 6)
    }

    func testPQCodesPickTheNearestCodewordAndTableSumsAreDistancesToTheDecodedVector() {
        let dim = 32, n = 3000
        let x = flat(clusteredVectors(n, dim, clusters: 20, seed: 21))
        let pq = x.withUnsafeBufferPointer { ProductQuantizer.train($0.baseAddress!, count: n, dimension: dim, m: 8, seed: 4, threads: 2) }
        XCTAssertEqual(pq.m, 8)
        var codes = [UInt8](repeating: 0, count: n * pq.m)
        x.withUnsafeBufferPointer { xp in
            codes.withUnsafeMutableBufferPointer { pq.encode(xp.baseAddress!, count: n, into: $0.baseAddress!, threads: 2) }
        }
        let ds = pq.subDimension
        var decoded = [Float](repeating: 0, count: dim)
        var errorSum = 0.0, normSum = 0.0
        for r in stride(from: 0, to: n, by: 11) {
            codes.withUnsafeBufferPointer { pq.decode($0.baseAddress! + r * pq.m, into: &decoded) }
            for j in 0..<pq.m {
                let sub = Array(x[(r * dim + j * ds)..<(r * dim + (j + 1) * ds)])
                let chosen = referenceDistance(sub, Array(decoded[(j * ds)..<((j + 1) * ds)]), .l2)
                let best = (0..<256).map {
                    referenceDistance(sub, Array(pq.codebooks[((j * 256 + $0) * ds)..<((j * 256 + $0 + 1) * ds)]), .l2)
                }.min()!
                XCTAssertLessThanOrEqual(chosen, best + 1e-4 * max(1, best), "row \(r) sub-space \(j)")
            }
            errorSum += referenceDistance(Array(x[r * dim..<(r + 1) * dim]), decoded, .l2)
            normSum += x[r * dim..<(r + 1) * dim].reduce(0.0) { $0 + Double($1 * $1) }
        }
        XCTAssertLessThan(errorSum / normSum, 0.05, "relative squared reconstruction error")
        // The table sum is the exact distance to the decoded vector (L2), and minus its inner product.
        let q = clusteredVectors(1, dim, clusters: 20, seed: 22)[0]
        var table = [Float](repeating: 0, count: pq.m * 256)
        var out = [Float](repeating: 0, count: n)
        for usesDot in [false, true] {
            q.withUnsafeBufferPointer {
                if usesDot {
                    pq.dotTable($0.baseAddress!, into: &table)
                } else {
                    pq.tableL2($0.baseAddress!, into: &table, kernel: tp_pq_kernels().pointee.table_l2)
                }
            }
            codes.withUnsafeBufferPointer { c in
                table.withUnsafeBufferPointer { t in tp_pq_kernels().pointee.scan(c.baseAddress!, n, pq.m, t.baseAddress!, &out) }
            }
            for r in stride(from: 0, to: n, by: 13) {
                codes.withUnsafeBufferPointer { pq.decode($0.baseAddress! + r * pq.m, into: &decoded) }
                let want = referenceDistance(q, decoded, usesDot ? .innerProduct : .l2)
                XCTAssertEqual(Double(out[r]), want, accuracy: 1e-3 * max(1, abs(want)), "row \(r) dot \(usesDot)")
            }
        }
    }

    func testIVFSectionListsEveryRowOnceAndRejectsDamage() throws {
        let dim = 16, n = 2000
        let x = flat(clusteredVectors(n, dim, clusters: 12, seed: 31))
        for codec in [IVFCodec.flat, .sq8, .pq] {
            let bytes = x.withUnsafeBufferPointer {
                IVFFormat.build(
                    $0.baseAddress!, count: n, dimension: dim, metric: .l2, nlist: 40, codec: codec, pqSubspaces: 4,
                    iterations: 5, seed: 2, threads: 2)
            }
            let view = try bytes.withUnsafeBytes { try IVFView(bytes: $0, file: "t", fileOffset: 0, dimension: dim, rows: n) }
            XCTAssertEqual(view.nlist, 40)
            var seen = [Int](repeating: 0, count: n)
            for l in 0..<view.nlist { for i in view.list(l) { seen[Int(view.rowIDs[i])] += 1 } }
            XCTAssertEqual(seen, [Int](repeating: 1, count: n), "\(codec): every row in exactly one list")
            // A row listed twice is refused, with the offset of the damage.
            var damaged = bytes
            let rowsAt = IVFHeader.size + 4 * (40 * dim + 41)
            damaged.withUnsafeMutableBytes {
                $0.storeBytes(of: $0.load(fromByteOffset: rowsAt + 4, as: UInt32.self), toByteOffset: rowsAt, as: UInt32.self)
            }
            XCTAssertThrowsError(
                try damaged.withUnsafeBytes { try IVFView(bytes: $0, file: "t", fileOffset: 100, dimension: dim, rows: n) }
            ) {
                XCTAssertTrue("\($0)".contains("listed twice") && "\($0)".contains("\(100 + rowsAt + 4)"), "\($0)")
            }
            XCTAssertThrowsError(
                try bytes.withUnsafeBytes {
                    try IVFView(
                        bytes: UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 1)]), file: "t",
                        fileOffset: 0, dimension: dim, rows: n)
                })
        }
    }

    /// PQ codes in the fast-scan layout (blocks of 64 rows per list, sub-space major) are the
    /// list-order codes transposed; sections in the older list-order layout are still read; an
    /// unknown layout is refused.
    func testPQFastScanLayoutHoldsTheListOrderCodesAndOldLayoutIsRead() throws {
        let dim = 16, n = 3000, nlist = 24
        let x = flat(clusteredVectors(n, dim, clusters: 12, seed: 33))
        func section(_ blocked: Bool) -> [UInt8] {
            x.withUnsafeBufferPointer {
                IVFFormat.build(
                    $0.baseAddress!, count: n, dimension: dim, metric: .l2, nlist: nlist, codec: .pq, pqSubspaces: 4,
                    iterations: 5, seed: 2, threads: 2, pqBlocked: blocked)
            }
        }
        let old = section(false), new = section(true)
        try old.withUnsafeBytes { o in
            try new.withUnsafeBytes { b in
                let vo = try IVFView(bytes: o, file: "old", fileOffset: 0, dimension: dim, rows: n)
                let vb = try IVFView(bytes: b, file: "new", fileOffset: 0, dimension: dim, rows: n)
                guard case .pq(let po) = vo.codes, case .pq(let pb) = vb.codes else { return XCTFail("not PQ sections") }
                XCTAssertNil(po.blockStarts)
                let starts = try XCTUnwrap(pb.blockStarts)
                let m = pb.m
                XCTAssertEqual(
                    Array(UnsafeBufferPointer(start: vo.rowIDs, count: n)), Array(UnsafeBufferPointer(start: vb.rowIDs, count: n)))
                for l in 0..<nlist {
                    for (i, row) in vb.list(l).enumerated() {
                        for j in 0..<m {
                            XCTAssertEqual(
                                pb.codes[starts[l] + i / 64 * 64 * m + j * 64 + i % 64], po.codes[row * m + j], "list \(l) row \(i)")
                        }
                    }
                    XCTAssertEqual(starts[l + 1] - starts[l], (vb.list(l).count + 63) / 64 * 64 * m)
                }
            }
        }
        var damaged = new
        let codecOffset = new.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) }
        damaged[codecOffset + 12] = 2
        XCTAssertThrowsError(try damaged.withUnsafeBytes { try IVFView(bytes: $0, file: "t", fileOffset: 100, dimension: dim, rows: n) }) {
            XCTAssertTrue("\($0)".contains("layout") && "\($0)".contains("\(100 + codecOffset + 12)"), "\($0)")
        }
    }

    /// An IVF collection through the public API: recall against exact ground truth grows with
    /// nprobe and is exact when every list is probed; filters, deletions and reopening hold.
    func testIVFCollectionsRecallGrowsWithNprobeAndResultsPersist() throws {
        let dim = 32, n = 8000
        let base = clusteredVectors(n, dim, clusters: 50, seed: 41)
        let queries = clusteredVectors(50, dim, clusters: 50, seed: 42)
        let truth = exactTopK(base, queries, metric: .l2)
        for quantization in [Quantization.none, .sq8, .pq, .rabitq] {
            let dir = TempDir()
            var db: Database? = try Database(path: dir.path, options: DatabaseOptions(buildThreads: 2))
            let c = try db!.createCollection(
                "v", dimension: dim, metric: .l2,
                config: CollectionConfig(
                    minRowsForGraph: 1000, quantization: quantization, index: .ivf,
                    ivf: IVFParameters(nlist: 64)))
            try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0], attributes: ["even": .bool($0 % 2 == 0)]) })
            try c.flush()
            let seg = c.info().segments
            XCTAssertEqual(seg.map(\.index), ["ivf"], "\(quantization)")
            XCTAssertEqual(seg[0].ivfLists, 64)
            var last = 0.0
            for nprobe in [1, 4, 16, 64] {
                let r = try recall(c, queries, truth, options: SearchOptions(nprobe: nprobe))
                XCTAssertGreaterThanOrEqual(r, last - 0.02, "\(quantization) nprobe \(nprobe)")
                last = r
            }
            let floor: [Quantization: Double] = [.none: 1.0, .sq8: 0.97, .pq: 0.95, .rabitq: 0.97]
            XCTAssertGreaterThanOrEqual(last, floor[quantization]!, "\(quantization): every list probed")
            let cost = try c.searchWithCost(vector: queries[0], k: 10, options: SearchOptions(nprobe: 4)).cost
            XCTAssertEqual(cost.listsProbed, 4)
            XCTAssertEqual(cost.graphSearches, 0)
            if quantization == .none {
                XCTAssertEqual(cost.quantizedDistances, 0)
                XCTAssertLessThan(cost.distances, n / 4)
            } else {
                XCTAssertGreaterThan(cost.quantizedDistances, 0)
                XCTAssertLessThan(cost.quantizedDistances, n / 4)
                if quantization == .rabitq {
                    // The error bound prunes: only candidates that could beat the k-th exact distance are re-scored.
                    XCTAssertGreaterThanOrEqual(cost.distances, 10)
                    // (Loose at 32 dimensions, where the bound is wide; see QUANTIZATION.md for 128 and 384.)
                    XCTAssertLessThan(cost.distances, cost.quantizedDistances)
                } else {
                    XCTAssertEqual(cost.distances, 40, "re-ranked: max(4·k, 40)")
                }
            }
            // Filters: only allowed rows, still the nearest ones.
            let even = try c.search(vector: queries[1], k: 10, options: SearchOptions(filter: .eq("even", .bool(true)), nprobe: 64))
            XCTAssertEqual(even.count, 10)
            XCTAssertTrue(
                even.allSatisfy {
                    if case .uint(let v) = $0.id { return v % 2 == 0 }; return false
                })
            // Deleted rows never come back.
            let before = try c.search(vector: queries[2], k: 10, options: SearchOptions(nprobe: 16))
            _ = try c.delete(ids: [before[0].id])
            XCTAssertFalse(try c.search(vector: queries[2], k: 10, options: SearchOptions(nprobe: 16)).contains { $0.id == before[0].id })
            let answer = try c.search(vector: queries[3], k: 10, options: SearchOptions(nprobe: 8))
            try db!.close()
            db = nil
            let db2 = try Database(path: dir.path)
            let c2 = try db2.collection("v")
            XCTAssertEqual(try c2.search(vector: queries[3], k: 10, options: SearchOptions(nprobe: 8)).map(\.id), answer.map(\.id))
            try db2.close()
        }
    }

    func testIndexSettingsValidateAndMoveACollectionBetweenHNSWAndIVF() throws {
        let dir = TempDir()
        let db = try Database(path: dir.path)
        XCTAssertThrowsError(
            try db.createCollection(
                "a", dimension: 30, metric: .l2,
                config: CollectionConfig(quantization: .pq, index: .ivf, ivf: IVFParameters(pqSubspaces: 7)))
        ) {
            XCTAssertTrue("\($0)".contains("does not divide"), "\($0)")
        }
        XCTAssertThrowsError(
            try db.createCollection("a", dimension: 30, metric: .l2, config: CollectionConfig(quantization: .pq, index: .hnsw)))
        XCTAssertThrowsError(
            try db.createCollection("a", dimension: 30, metric: .l2, config: CollectionConfig(ivf: IVFParameters(nlist: 0))))
        XCTAssertThrowsError(try db.createCollection("a", dimension: 5000, metric: .l2, config: CollectionConfig(quantization: .rabitq))) {
            XCTAssertTrue("\($0)".contains("up to 4096"), "\($0)")
        }
        let dim = 16, n = 3000
        let base = clusteredVectors(n, dim, clusters: 20, seed: 51)
        let c = try db.createCollection("b", dimension: dim, metric: .cosine, config: CollectionConfig(minRowsForGraph: 1000))
        try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
        try c.flush()
        XCTAssertEqual(c.info().segments.map(\.index), ["hnsw"], "auto: mid-sized segments get HNSW")
        try c.updateIndexSettings {
            $0.index = .ivf; $0.quantization = .pq
        }
        try c.compact()
        XCTAssertEqual(c.info().segments.map(\.index), ["ivf"])
        XCTAssertFalse(c.segmentsOutOfDate())
        let q = base[5]
        XCTAssertEqual(try c.search(vector: q, k: 1).first?.id, .uint(5))
        try c.updateIndexSettings {
            $0.index = .auto; $0.ivf.minRows = 2000
        }
        XCTAssertFalse(c.segmentsOutOfDate(), "auto over 2,000 rows plans the IVF the segment has")
        try c.updateIndexSettings {
            $0.index = .flat; $0.quantization = .none
        }
        try c.compact()
        XCTAssertEqual(c.info().segments.map(\.index), ["flat"])
        try db.close()
    }

    /// RaBitQ's estimate of o'·q' stays within its bound for at least 99% of pairs (the paper's
    /// guarantee at ε0 = 1.9), on uniform random and clustered data, and the estimated distances
    /// track the exact ones.
    func testRaBitQErrorBoundHoldsOnAtLeast99PercentOfPairs() {
        for (dim, data, queries) in [
            (64, randomVectors(1500, 64, seed: 61), randomVectors(20, 64, seed: 63)),
            (100, clusteredVectors(1500, 100, clusters: 10, seed: 62), clusteredVectors(20, 100, clusters: 10, seed: 64)),
        ] {
            assertRaBitQBoundHolds(dimension: dim, data: data, queries: queries)
        }
    }

    /// A damaged byte in a segment's IVF section is found by verify, naming the file and the
    /// section; the other sections stay readable.
    func testDamagedIVFSectionIsReportedByVerify() throws {
        let dim = 16, n = 3000
        let base = clusteredVectors(n, dim, clusters: 10, seed: 71)
        let dir = TempDir()
        let db = try Database(path: dir.path)
        let c = try db.createCollection(
            "v", dimension: dim, metric: .l2,
            config: CollectionConfig(minRowsForGraph: 1000, quantization: .rabitq, index: .ivf))
        try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
        try c.flush()
        let ivfBytes = c.info().segments[0].ivfBytes
        XCTAssertGreaterThan(ivfBytes, 0)
        try db.close()
        XCTAssertEqual(Database.verify(path: dir.path), [])
        // The IVF section is the last before the table (4 sections × 32 bytes) and footer (32 bytes).
        let file = try flipSegmentByte(dir.path, collection: "v") { $0 - 32 - 32 * 4 - ivfBytes / 2 }
        assertVerifyReportsOneDamagedSection(dir.path, file: file, section: 8)
    }

    /// Inner-product and cosine collections rank IVF lists and codes by inner product (RaBitQ
    /// adds the centroid terms): with every list probed, recall against exact ground truth.
    func testIVFWithDotMetricsFindsTheExactNeighbours() throws {
        let dim = 32, n = 5000
        let base = clusteredVectors(n, dim, clusters: 30, seed: 81)
        let queries = clusteredVectors(30, dim, clusters: 30, seed: 82)
        for metric in [Metric.innerProduct, .cosine] {
            let truth = exactTopK(base, queries, metric: metric)
            for quantization in [Quantization.none, .sq8, .pq, .rabitq] {
                let dir = TempDir()
                let db = try Database(path: dir.path)
                let c = try db.createCollection(
                    "v", dimension: dim, metric: metric,
                    config: CollectionConfig(
                        minRowsForGraph: 1000, quantization: quantization, index: .ivf,
                        ivf: IVFParameters(nlist: 32)))
                try c.upsert((0..<n).map { Document(id: .uint(UInt64($0)), vector: base[$0]) })
                try c.flush()
                let r = try recall(c, queries, truth, options: SearchOptions(nprobe: 32))
                XCTAssertGreaterThanOrEqual(r, quantization == .none || quantization == .rabitq ? 0.99 : 0.9, "\(metric) \(quantization)")
                // Reported distances are the exact ones (re-ranked from f32).
                let hit = try XCTUnwrap(c.search(vector: queries[0], k: 1, options: SearchOptions(nprobe: 32)).first)
                guard case .uint(let id) = hit.id else { return XCTFail() }
                let want = referenceDistance(base[Int(id)], queries[0], metric)
                XCTAssertEqual(Double(hit.distance), want, accuracy: 1e-3 * max(1, abs(want)), "\(metric) \(quantization)")
                try db.close()
            }
        }
    }
}

/// Encodes `data` with RaBitQ around `centroid` (default: every coordinate 0.01) and checks, for
/// every query and row, the kernels against their scalar references, the lower bound, and that at
/// least 99% of the estimated inner products are within the error bound.
func assertRaBitQBoundHolds(
    dimension dim: Int, data: [[Float]], queries: [[Float]], centroid: [Float]? = nil,
    file: StaticString = #filePath, line: UInt = #line
) {
    let q = RaBitQ(dimension: dim, rotation: RaBitQ.randomRotation(dimension: dim, seed: 5))
    // The rotation is orthogonal: R·Rᵀ = I (every row for small dimensions, 64 rows for large ones).
    for i in stride(from: 0, to: dim, by: max(1, dim / 64)) {
        for j in 0..<dim {
            var s: Float = 0
            for x in 0..<dim { s += q.rotation[i * dim + x] * q.rotation[j * dim + x] }
            XCTAssertEqual(s, i == j ? 1 : 0, accuracy: 1e-4)
        }
    }
    let centroid = centroid ?? [Float](repeating: 0.01, count: dim)
    let n = data.count
    var codes = [UInt64](repeating: 0, count: n * q.words)
    var factors = [Float](repeating: 0, count: n * RaBitQ.factorCount)
    var work = [Float](repeating: 0, count: 2 * dim)
    for r in 0..<n {
        codes.withUnsafeMutableBufferPointer { c in
            factors.withUnsafeMutableBufferPointer { f in
                q.encode(
                    data[r], centroid: centroid, code: c.baseAddress! + r * q.words, factors: f.baseAddress! + r * RaBitQ.factorCount,
                    work: &work)
            }
        }
    }
    var rc = [Float](repeating: 0, count: dim)
    centroid.withUnsafeBufferPointer { q.rotate($0.baseAddress!, into: &rc) }
    var within = 0, total = 0
    var planes = [UInt64](repeating: 0, count: 4 * q.words)
    var sums = [UInt32](repeating: 0, count: n), pops = sums, sums2 = sums, pops2 = sums
    for qv in queries {
        var rq = [Float](repeating: 0, count: dim)
        qv.withUnsafeBufferPointer { q.rotate($0.baseAddress!, into: &rq) }
        let p = q.prepare(rotatedQuery: rq, rotatedCentroid: rc, planes: &planes, work: &work)
        tp_rabitq_kernels().pointee.scan(codes, n, q.words, planes, &sums, &pops)
        tp_rabitq_kernels_named("scalar")!.pointee.scan(codes, n, q.words, planes, &sums2, &pops2)
        XCTAssertEqual(sums, sums2, "popcount kernel against the scalar reference")
        XCTAssertEqual(pops, pops2)
        // The vectorized lower-bound kernel against the Swift reference.
        var kernelLower = [Float](repeating: 0, count: n), scalarLower = kernelLower
        var query = tp_rabitq_query(
            delta: p.delta, lower: p.lower, qsum: p.sum, inv_root_d: 1 / Float(dim).squareRoot(), qnorm: p.queryNorm, qdotc: 0, uses_dot: 0)
        tp_rabitq_kernels().pointee.lower_bounds(sums, pops, factors, n, &query, &kernelLower)
        tp_rabitq_kernels_named("scalar")!.pointee.lower_bounds(sums, pops, factors, n, &query, &scalarLower)
        for r in 0..<n {
            let (_, ref) = factors.withUnsafeBufferPointer {
                q.estimate(sum: sums[r], pop: pops[r], factors: $0.baseAddress! + r * RaBitQ.factorCount, p, usesDot: false)
            }
            XCTAssertEqual(kernelLower[r], ref, accuracy: 1e-3 * max(1, abs(ref)))
            XCTAssertEqual(scalarLower[r], ref, accuracy: 1e-3 * max(1, abs(ref)))
        }
        let qr = zip(qv, centroid).map { $0 - $1 }
        let qn = qr.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for r in 0..<n {
            let orr = zip(data[r], centroid).map { $0 - $1 }
            let on = orr.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let truth = zip(orr, qr).reduce(0) { $0 + $1.0 * $1.1 } / (on * qn)
            let ipBarO = factors[r * RaBitQ.factorCount + 1]
            // Estimated unit inner product, as `estimate` computes it.
            let masked = p.delta * Float(sums[r]) + p.lower * Float(pops[r])
            let est = (2 * masked - p.sum) / Float(dim).squareRoot() / ipBarO
            let roundingTerm = Float(pops[r]) * p.delta / (Float(dim).squareRoot() * ipBarO)
            if abs(est - truth) <= q.bound(ipBarO: ipBarO) + roundingTerm { within += 1 }
            total += 1
            // The lower bound is a lower bound whenever the estimate is within its bound.
            let exact = zip(data[r], qv).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            let (d, lower) = factors.withUnsafeBufferPointer {
                q.estimate(sum: sums[r], pop: pops[r], factors: $0.baseAddress! + r * RaBitQ.factorCount, p, usesDot: false)
            }
            if abs(est - truth) <= q.bound(ipBarO: ipBarO) + roundingTerm {
                XCTAssertLessThanOrEqual(lower, exact * 1.0001 + 1e-3, "dim \(dim) row \(r)")
            }
            XCTAssertLessThanOrEqual(abs(d - exact), max(1, exact), "dim \(dim) row \(r): estimate far from exact")
        }
    }
    XCTAssertGreaterThanOrEqual(
        Double(within) / Double(total), 0.99, "dim \(dim): \(within) of \(total) pairs within the bound", file: file, line: line)
}
