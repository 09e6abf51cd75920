import TidepoolKernels

/// The PQ block of an IVF section: codebooks and the codes of the residuals to each list's
/// centroid (the codebooks then spend their precision on what distinguishes rows of one list, as
/// FAISS's IVF-PQ does).
///
///     `PQBlockHeader` (64 bytes): u32 dimension, u32 m, u32 residual flag (1), u32 layout, u32[12] reserved
///     f32 codebooks[256 × dimension] (sub-space j's centroid c at (j·256 + c)·(dimension / m))
///     codes, layout 0 (written before fast scan): rows × m bytes in list order;
///            layout 1: per list, its rows in blocks of 64, sub-space major (block byte j·64 + r is
///            the list's row 64·b + r's code in sub-space j; a list's last block padded with zero
///            codes), lists one after another.
struct PQCodes: @unchecked Sendable {
    /// Rows per fast-scan block (one AVX-512 register of codes per sub-space).
    static let block = 64

    let quantizer: ProductQuantizer
    let codes: UnsafePointer<UInt8>
    /// Layout 1: where each list's blocks start in `codes` (nlist + 1 entries); nil for list order.
    let blockStarts: [Int]?
    /// Resolved once per segment, not per query.
    let kernels: UnsafePointer<tp_pq_table>

    var m: Int { quantizer.m }

    /// Where each list's blocks start (bytes from the codes' start), for lists of `offsets`; nlist + 1 entries.
    static func blockStarts(offsets: UnsafePointer<UInt32>, nlist: Int, m: Int) -> [Int] {
        var starts = [Int](repeating: 0, count: nlist + 1)
        for l in 0..<nlist {
            let rows = Int(offsets[l + 1] - offsets[l])
            starts[l + 1] = starts[l] + (rows + block - 1) / block * block * m
        }
        return starts
    }

    /// Trains the codebooks on the residuals and encodes every row, in layout 1 (`blocked`) or 0.
    static func encode(_ vectors: UnsafePointer<Float>, lists: IVFLists, m: Int, seed: UInt64, threads: Int, blocked: Bool) -> [UInt8] {
        let count = lists.rows, dimension = lists.dimension
        let gathered = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count) * dimension)
        defer { gathered.deallocate() }
        for l in 0..<lists.nlist {
            for i in lists.list(l) {
                let src = vectors + Int(lists.order[i]) * dimension, dst = gathered + i * dimension
                for d in 0..<dimension { dst[d] = src[d] - lists.centroids[l * dimension + d] }
            }
        }
        let pq = ProductQuantizer.train(UnsafePointer(gathered), count: count, dimension: dimension, m: m, seed: seed, threads: threads)
        // u16 sums of byte tables hold at most 257 sub-spaces; wider codes stay in list order.
        let layout: UInt32 = blocked && pq.m <= 256 ? 1 : 0
        var w = ByteWriter(capacity: PQBlockHeader.size + 4 * pq.codebooks.count)
        PQBlockHeader(dimension: dimension, m: pq.m, layout: layout).encode(into: &w)
        for c in pq.codebooks { w.u32(c.bitPattern) }
        var listOrder = [UInt8](repeating: 0, count: count * pq.m)
        listOrder.withUnsafeMutableBufferPointer { o in
            pq.encode(UnsafePointer(gathered), count: count, into: o.baseAddress!, threads: threads)
        }
        guard layout == 1 else { return w.bytes + listOrder }
        // Fast-scan layout: each list's codes transposed in blocks of 64 rows.
        let starts = lists.offsets.withUnsafeBufferPointer { blockStarts(offsets: $0.baseAddress!, nlist: lists.nlist, m: pq.m) }
        var blocked = [UInt8](repeating: 0, count: starts[lists.nlist])
        for l in 0..<lists.nlist {
            let first = Int(lists.offsets[l])
            for i in 0..<lists.list(l).count {
                let at = starts[l] + i / block * block * pq.m, r = i % block
                for j in 0..<pq.m { blocked[at + j * block + r] = listOrder[(first + i) * pq.m + j] }
            }
        }
        return w.bytes + blocked
    }

    /// Reads a block of `bytes` (from the codec offset to the section's end) for lists of `offsets`;
    /// `corrupt` takes block-relative offsets.
    init(
        block bytes: UnsafeRawBufferPointer, dimension dim: Int, rows n: Int, offsets: UnsafePointer<UInt32>, nlist: Int,
        _ corrupt: (Int, String) -> TidepoolError
    ) throws {
        let h = try PQBlockHeader.decode(bytes, dimension: dim, corrupt)
        let starts = h.layout == 1 ? PQCodes.blockStarts(offsets: offsets, nlist: nlist, m: h.m) : nil
        let codeBytes = starts?[nlist] ?? n * h.m
        let booksAt = PQBlockHeader.size
        let codesAt = booksAt + 4 * 256 * dim
        guard bytes.count == codesAt + codeBytes else {
            throw corrupt(0, "pq block holds \(bytes.count) bytes, expected \(codesAt + codeBytes)")
        }
        var books = [Float](repeating: 0, count: 256 * dim)
        for i in 0..<books.count {
            books[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: booksAt + 4 * i, as: UInt32.self)))
            guard books[i].isFinite else { throw corrupt(booksAt + 4 * i, "pq codebook value is not finite") }
        }
        quantizer = ProductQuantizer(dimension: dim, m: h.m, codebooks: books)
        codes = (bytes.baseAddress! + codesAt).assumingMemoryBound(to: UInt8.self)
        blockStarts = starts
        kernels = tp_pq_kernels()
    }
}

/// The PQ block's first 64 bytes.
struct PQBlockHeader {
    static let size = 64

    var dimension: Int
    var m: Int
    /// 0: list order; 1: fast-scan blocks.
    var layout: UInt32

    func encode(into w: inout ByteWriter) {
        w.u32(UInt32(dimension))
        w.u32(UInt32(m))
        w.u32(1)  // codes are of residuals to the list centroid
        w.u32(layout)
        w.pad(toMultipleOf: PQBlockHeader.size)
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, dimension: Int, _ corrupt: (Int, String) -> TidepoolError) throws -> PQBlockHeader {
        guard bytes.count >= size else { throw corrupt(0, "pq block of \(bytes.count) bytes is shorter than its header") }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        let dim = Int(u32(0)), m = Int(u32(4)), residual = u32(8), layout = u32(12)
        guard dim == dimension, m >= 1, dim % m == 0, residual == 1 else {
            throw corrupt(0, "pq block has dimension \(dim), \(m) sub-spaces, residual flag \(residual)")
        }
        guard layout <= 1, layout == 0 || m <= 256 else { throw corrupt(12, "pq code layout \(layout) not supported with \(m) sub-spaces") }
        return PQBlockHeader(dimension: dim, m: m, layout: layout)
    }
}
