import Foundation
import TidepoolKernels

/// How an IVF segment's posting lists hold their vectors.
enum IVFCodec: UInt32 {
    /// Row numbers only: distances read the f32 vectors of the segment (exact, no re-ranking).
    case flat = 0
    /// SQ8 codes in list order; candidates re-ranked with f32.
    case sq8 = 1
    /// PQ codes in list order; candidates re-ranked with f32.
    case pq = 2
    /// RaBitQ codes of the residuals to the list centroid; candidates whose error bound cannot
    /// beat the k-th exact distance so far are skipped, the rest re-scored with f32.
    case rabitq = 3
}

/// An inverted-file index: k-means centroids partition the segment's rows into `nlist`
/// posting lists; a search ranks the centroids against the query and scans the `nprobe`
/// nearest lists.
///
/// Section layout (kind 8, little-endian; offsets relative to the section):
///
///     0   u32 nlist, u32 dimension, u32 codec, u32 rows, u64 codec offset, u64 reserved
///     32  f32 centroids[nlist × dimension]
///         u32 list offsets[nlist + 1] (into the row list; the last equals rows)
///         u32 rows[rows], list by list: every row of the segment exactly once
///         zero padding to 64
///     codec offset: sq8: an SQ8 block (`ScalarQuantizer` layout) whose codes follow list order;
///                   pq: u32 dimension, u32 m, u32 1 (codes are of residuals to the list centroid),
///                       u32 layout, u32[12] reserved, f32 codebooks[256 × dimension], then the codes:
///                       layout 0 (written before fast scan): rows × m bytes in list order;
///                       layout 1: per list, its rows in blocks of 64, sub-space major (block byte
///                       j·64 + r is the list's row 64·b + r's code in sub-space j; a list's last
///                       block padded with zero codes), lists one after another;
///                   rabitq: u32 dimension, u32 words, u32 nlist, u32[13] reserved, f32 rotation[dim × dim],
///                       f32 rotated centroids[nlist × dim], f32 factors[rows × 4] (list order),
///                       zero padding to 64, u64 codes[rows × words] (list order);  flat: nothing.
enum IVFFormat {
    static let headerSize = 32
    static let pqHeaderSize = 64
    /// Rows per PQ fast-scan block (one AVX-512 register of codes per sub-space).
    static let pqBlock = 64

    /// Where each list's PQ blocks start (bytes from the codes' start), for lists of `offsets`; nlist + 1 entries.
    static func pqBlockStarts(offsets: UnsafePointer<UInt32>, nlist: Int, m: Int) -> [Int] {
        var starts = [Int](repeating: 0, count: nlist + 1)
        for l in 0..<nlist {
            let rows = Int(offsets[l + 1] - offsets[l])
            starts[l + 1] = starts[l] + (rows + pqBlock - 1) / pqBlock * pqBlock * m
        }
        return starts
    }

    /// Builds the whole section: trains the centroids, assigns every row, encodes the lists.
    /// `pqBlocked` false writes PQ codes in the older list-order layout (tests check it is still read).
    static func build(_ vectors: UnsafePointer<Float>, count: Int, dimension: Int, metric: Metric, nlist: Int,
                      codec: IVFCodec, pqSubspaces: Int, iterations: Int, seed: UInt64, threads: Int,
                      pqBlocked: Bool = true) -> [UInt8] {
        let nlist = max(1, min(nlist, count))
        let km = KMeans(k: nlist, iterations: iterations, seed: seed, threads: threads)
        let centroids = km.train(vectors, count: count, dimension: dimension).centroids
        var assignment = [Int32](repeating: 0, count: count)
        KMeans.assign(vectors, count: count, dimension: dimension, centroids: centroids, k: nlist,
                      innerProduct: metric.usesDot, threads: threads, into: &assignment)
        // Counting sort by list keeps rows ascending within a list (sequential f32 reads when re-ranking).
        var offsets = [UInt32](repeating: 0, count: nlist + 1)
        for a in assignment { offsets[Int(a) + 1] += 1 }
        for i in 0..<nlist { offsets[i + 1] += offsets[i] }
        var fill = Array(offsets[0..<nlist])
        var order = [UInt32](repeating: 0, count: count)
        for (r, a) in assignment.enumerated() {
            order[Int(fill[Int(a)])] = UInt32(r)
            fill[Int(a)] += 1
        }
        var w = ByteWriter(capacity: headerSize + 4 * (nlist * dimension + nlist + 1 + count) + 64)
        let codecOffset = align64(headerSize + 4 * (nlist * dimension + nlist + 1 + count))
        w.u32(UInt32(nlist)); w.u32(UInt32(dimension)); w.u32(codec.rawValue); w.u32(UInt32(count))
        w.u64(codec == .flat ? 0 : UInt64(codecOffset)); w.u64(0)
        for c in centroids { w.u32(c.bitPattern) }
        for o in offsets { w.u32(o) }
        for r in order { w.u32(r) }
        var out = w.bytes
        out += [UInt8](repeating: 0, count: codecOffset - out.count)
        switch codec {
        case .flat:
            break
        case .sq8:
            out += ScalarQuantizer.section(vectors, count: count, dimension: dimension, order: order)
        case .pq:
            // Residuals to the list centroid, in list order: the codebooks then spend their
            // precision on what distinguishes rows of one list, as FAISS's IVF-PQ does.
            let gathered = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count) * dimension)
            defer { gathered.deallocate() }
            for l in 0..<nlist {
                for i in Int(offsets[l])..<Int(offsets[l + 1]) {
                    let src = vectors + Int(order[i]) * dimension, dst = gathered + i * dimension
                    for d in 0..<dimension { dst[d] = src[d] - centroids[l * dimension + d] }
                }
            }
            // Train on a spread sample of the residuals (list order would sample a few lists only).
            let pq = ProductQuantizer.train(UnsafePointer(gathered), count: count, dimension: dimension, m: pqSubspaces,
                                            seed: seed &+ 7, threads: threads)
            var h = ByteWriter(capacity: pqHeaderSize + 4 * pq.codebooks.count)
            // u16 sums of byte tables hold at most 257 sub-spaces; wider codes stay in list order.
            let blockedLayout = pqBlocked && pq.m <= 256
            h.u32(UInt32(dimension)); h.u32(UInt32(pq.m)); h.u32(1); h.u32(blockedLayout ? 1 : 0)
            while h.bytes.count < pqHeaderSize { h.u8(0) }
            for c in pq.codebooks { h.u32(c.bitPattern) }
            out += h.bytes
            var listOrder = [UInt8](repeating: 0, count: count * pq.m)
            listOrder.withUnsafeMutableBufferPointer { o in
                pq.encode(UnsafePointer(gathered), count: count, into: o.baseAddress!, threads: threads)
            }
            if !blockedLayout {
                out += listOrder
            } else {
                // Fast-scan layout: each list's codes transposed in blocks of 64 rows.
                let m = pq.m
                let starts = offsets.withUnsafeBufferPointer { pqBlockStarts(offsets: $0.baseAddress!, nlist: nlist, m: m) }
                var blocked = [UInt8](repeating: 0, count: starts[nlist])
                for l in 0..<nlist {
                    let first = Int(offsets[l])
                    for i in 0..<(Int(offsets[l + 1]) - first) {
                        let block = starts[l] + i / pqBlock * pqBlock * m, r = i % pqBlock
                        for j in 0..<m { blocked[block + j * pqBlock + r] = listOrder[(first + i) * m + j] }
                    }
                }
                out += blocked
            }
        case .rabitq:
            out += rabitqBlock(vectors, count: count, dimension: dimension, centroids: centroids, offsets: offsets,
                               order: order, seed: seed &+ 11, threads: threads)
        }
        return out
    }

    static let rabitqHeaderSize = 64

    /// The RaBitQ block: rotation, rotated centroids, per-row factors and codes in list order.
    static func rabitqBlock(_ vectors: UnsafePointer<Float>, count: Int, dimension d: Int, centroids: [Float],
                            offsets: [UInt32], order: [UInt32], seed: UInt64, threads: Int) -> [UInt8] {
        let nlist = offsets.count - 1
        let q = RaBitQ(dimension: d, rotation: RaBitQ.randomRotation(dimension: d, seed: seed))
        let words = q.words
        let factorsAt = rabitqHeaderSize + 4 * (d * d + nlist * d)
        let codesAt = align64(factorsAt + 4 * RaBitQ.factorCount * count)
        var out = [UInt8](repeating: 0, count: codesAt + 8 * words * count)
        let listOf = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, count))
        defer { listOf.deallocate() }
        for l in 0..<nlist { for i in Int(offsets[l])..<Int(offsets[l + 1]) { listOf[i] = Int32(l) } }
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(d).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt32(words).littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: UInt32(nlist).littleEndian, toByteOffset: 8, as: UInt32.self)
            let base = raw.baseAddress!
            let rot = (base + rabitqHeaderSize).assumingMemoryBound(to: Float.self)
            for i in 0..<(d * d) { rot[i] = q.rotation[i] }
            let rc = rot + d * d
            centroids.withUnsafeBufferPointer { c in for l in 0..<nlist { q.rotate(c.baseAddress! + l * d, into: rc + l * d) } }
            nonisolated(unsafe) let factors = (base + factorsAt).assumingMemoryBound(to: Float.self)
            nonisolated(unsafe) let codes = (base + codesAt).assumingMemoryBound(to: UInt64.self)
            nonisolated(unsafe) let src = vectors, lists = listOf
            let chunk = 4096, chunks = (count + chunk - 1) / chunk
            let workers = max(1, min(threads, chunks))
            centroids.withUnsafeBufferPointer { cbuf in
                nonisolated(unsafe) let cp = cbuf.baseAddress!
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let work = UnsafeMutablePointer<Float>.allocate(capacity: 2 * d)
                    defer { work.deallocate() }
                    var c = w
                    while c < chunks {
                        for i in (c * chunk)..<min(count, (c + 1) * chunk) {
                            q.encode(src + Int(order[i]) * d, centroid: cp + Int(lists[i]) * d, code: codes + i * words,
                                     factors: factors + i * RaBitQ.factorCount, work: work)
                        }
                        c += workers
                    }
                }
            }
        }
        return out
    }
}

/// A segment's IVF section, read in place from the mapped file.
struct IVFView: @unchecked Sendable {
    let nlist: Int
    let dimension: Int
    let rows: Int
    let codec: IVFCodec
    let centroids: UnsafePointer<Float>
    let offsets: UnsafePointer<UInt32>
    let rowIDs: UnsafePointer<UInt32>
    let sq8: SQ8View?
    let pq: ProductQuantizer?
    let pqCodes: UnsafePointer<UInt8>?
    /// PQ codes in fast-scan blocks (layout 1): where each list's blocks start in `pqCodes`; nil for list order.
    let pqBlockStarts: [Int]?
    let rabitq: RaBitQ?
    let rotatedCentroids: UnsafePointer<Float>?
    let rabitqFactors: UnsafePointer<Float>?
    let rabitqCodes: UnsafePointer<UInt64>?
    /// The longest posting list (sizes the scan buffer).
    let maxListLength: Int

    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, dimension: Int, rows: Int) throws {
        func corrupt(_ at: Int, _ why: String) -> TidepoolError { .corrupt(file: file, offset: fileOffset + at, reason: why) }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        guard bytes.count >= IVFFormat.headerSize else { throw corrupt(0, "ivf section too short (\(bytes.count) bytes)") }
        let nl = Int(u32(0)), dim = Int(u32(4)), codecRaw = u32(8), n = Int(u32(12))
        let codecOffset = Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) & 0xFFFF_FFFF_FFFF)
        guard dim == dimension else { throw corrupt(4, "ivf dimension \(dim), expected \(dimension)") }
        guard n == rows else { throw corrupt(12, "ivf section covers \(n) rows, the segment has \(rows)") }
        guard nl >= 1, nl <= max(1, rows) else { throw corrupt(0, "ivf list count \(nl) out of range for \(rows) rows") }
        guard let c = IVFCodec(rawValue: codecRaw) else { throw corrupt(8, "unknown ivf codec \(codecRaw)") }
        let listsEnd = IVFFormat.headerSize + 4 * (nl * dim + nl + 1 + n)
        guard bytes.count >= listsEnd else { throw corrupt(0, "ivf section holds \(bytes.count) bytes, its lists need \(listsEnd)") }
        nlist = nl; self.dimension = dim; self.rows = n; codec = c
        let base = bytes.baseAddress!
        centroids = (base + IVFFormat.headerSize).assumingMemoryBound(to: Float.self)
        for i in 0..<(nl * dim) where !centroids[i].isFinite {
            throw corrupt(IVFFormat.headerSize + 4 * i, "ivf centroid value is not finite")
        }
        let offsetsAt = IVFFormat.headerSize + 4 * nl * dim
        offsets = (base + offsetsAt).assumingMemoryBound(to: UInt32.self)
        rowIDs = (base + offsetsAt + 4 * (nl + 1)).assumingMemoryBound(to: UInt32.self)
        var longest = 0
        guard offsets[0] == 0, Int(offsets[nl]) == n else { throw corrupt(offsetsAt, "ivf list offsets do not span the rows") }
        for i in 0..<nl {
            guard offsets[i] <= offsets[i + 1] else { throw corrupt(offsetsAt + 4 * i, "ivf list offsets out of order") }
            longest = max(longest, Int(offsets[i + 1] - offsets[i]))
        }
        maxListLength = longest
        // Every row in exactly one list: a damaged row id would search the wrong vector.
        var seen = Bitmap(count: n)
        for i in 0..<n {
            let r = Int(rowIDs[i])
            guard r < n, !seen.contains(r) else {
                throw corrupt(offsetsAt + 4 * (nl + 1 + i), "ivf row id \(r) out of range or listed twice")
            }
            seen.insert(r)
        }
        switch c {
        case .flat:
            guard bytes.count == align64(listsEnd) else {
                throw corrupt(0, "ivf section holds \(bytes.count) bytes, expected \(align64(listsEnd))")
            }
            sq8 = nil; pq = nil; pqCodes = nil; pqBlockStarts = nil
            rabitq = nil; rotatedCentroids = nil; rabitqFactors = nil; rabitqCodes = nil
        case .sq8:
            guard codecOffset >= listsEnd, codecOffset % 64 == 0, codecOffset <= bytes.count else {
                throw corrupt(16, "ivf codec offset \(codecOffset) out of range")
            }
            sq8 = try SQ8View(bytes: UnsafeRawBufferPointer(rebasing: bytes[codecOffset...]), file: file,
                              fileOffset: fileOffset + codecOffset, dimension: dim, rows: n)
            pq = nil; pqCodes = nil; pqBlockStarts = nil
            rabitq = nil; rotatedCentroids = nil; rabitqFactors = nil; rabitqCodes = nil
        case .pq:
            guard codecOffset >= listsEnd, codecOffset % 64 == 0, codecOffset + IVFFormat.pqHeaderSize <= bytes.count else {
                throw corrupt(16, "ivf codec offset \(codecOffset) out of range")
            }
            let pdim = Int(u32(codecOffset)), m = Int(u32(codecOffset + 4)), residual = u32(codecOffset + 8)
            let layout = u32(codecOffset + 12)
            guard pdim == dim, m >= 1, dim % m == 0, residual == 1 else {
                throw corrupt(codecOffset, "pq block has dimension \(pdim), \(m) sub-spaces, residual flag \(residual)")
            }
            guard layout <= 1, layout == 0 || m <= 256 else { throw corrupt(codecOffset + 12, "pq code layout \(layout) not supported with \(m) sub-spaces") }
            let starts = layout == 1 ? IVFFormat.pqBlockStarts(offsets: offsets, nlist: nl, m: m) : nil
            let codeBytes = starts?[nl] ?? n * m
            let booksAt = codecOffset + IVFFormat.pqHeaderSize
            let codesAt = booksAt + 4 * 256 * dim
            guard bytes.count == codesAt + codeBytes else {
                throw corrupt(codecOffset, "pq block holds \(bytes.count - codecOffset) bytes, expected \(codesAt + codeBytes - codecOffset)")
            }
            pqBlockStarts = starts
            var books = [Float](repeating: 0, count: 256 * dim)
            for i in 0..<books.count {
                books[i] = Float(bitPattern: u32(booksAt + 4 * i))
                guard books[i].isFinite else { throw corrupt(booksAt + 4 * i, "pq codebook value is not finite") }
            }
            pq = ProductQuantizer(dimension: dim, m: m, codebooks: books)
            pqCodes = (base + codesAt).assumingMemoryBound(to: UInt8.self)
            sq8 = nil
            rabitq = nil; rotatedCentroids = nil; rabitqFactors = nil; rabitqCodes = nil
        case .rabitq:
            let h = IVFFormat.rabitqHeaderSize
            guard codecOffset >= listsEnd, codecOffset % 64 == 0, codecOffset + h <= bytes.count else {
                throw corrupt(16, "ivf codec offset \(codecOffset) out of range")
            }
            let rdim = Int(u32(codecOffset)), words = Int(u32(codecOffset + 4)), rlists = Int(u32(codecOffset + 8))
            guard rdim == dim, words == (dim + 63) / 64, rlists == nl else {
                throw corrupt(codecOffset, "rabitq block has dimension \(rdim), \(words) words, \(rlists) lists")
            }
            let rotAt = codecOffset + h
            let factorsAt = rotAt + 4 * (dim * dim + nl * dim)
            let codesAt = codecOffset + align64(factorsAt - codecOffset + 4 * RaBitQ.factorCount * n)
            guard bytes.count == codesAt + 8 * words * n else {
                throw corrupt(codecOffset, "rabitq block holds \(bytes.count - codecOffset) bytes, expected \(codesAt + 8 * words * n - codecOffset)")
            }
            let floats = (base + rotAt).assumingMemoryBound(to: Float.self)
            for i in 0..<((factorsAt - rotAt) / 4 + RaBitQ.factorCount * n) where !floats[i].isFinite {
                throw corrupt(rotAt + 4 * i, "rabitq value is not finite")
            }
            for i in 0..<n where !(floats[(factorsAt - rotAt) / 4 + i * RaBitQ.factorCount + 1] > 0) {
                throw corrupt(factorsAt + 4 * (i * RaBitQ.factorCount + 1), "rabitq factor is not positive")
            }
            rabitq = RaBitQ(dimension: dim, rotation: Array(UnsafeBufferPointer(start: floats, count: dim * dim)))
            rotatedCentroids = UnsafePointer(floats + dim * dim)
            rabitqFactors = (base + factorsAt).assumingMemoryBound(to: Float.self)
            rabitqCodes = (base + codesAt).assumingMemoryBound(to: UInt64.self)
            sq8 = nil; pq = nil; pqCodes = nil; pqBlockStarts = nil
        }
    }

    @inline(__always) func list(_ i: Int) -> Range<Int> { Int(offsets[i])..<Int(offsets[i + 1]) }
}
