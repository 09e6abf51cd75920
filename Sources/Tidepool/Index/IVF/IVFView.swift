import Foundation

/// A segment's IVF section, read in place from the mapped file and validated on open: the lists
/// span the rows, every row is in exactly one list, and the codec's block has the size its
/// header implies with finite values, so a search never reads out of bounds.
struct IVFView: @unchecked Sendable {
    /// How the lists' rows are coded.
    enum Codes {
        /// Row numbers only: scans read the segment's f32 vectors.
        case flat
        /// SQ8 codes in list order.
        case sq8(SQ8View)
        case pq(PQCodes)
        case rabitq(RaBitQCodes)
    }

    let nlist: Int
    let dimension: Int
    let rows: Int
    let codec: IVFCodec
    let centroids: UnsafePointer<Float>
    let offsets: UnsafePointer<UInt32>
    let rowIDs: UnsafePointer<UInt32>
    let codes: Codes
    /// The longest posting list (sizes the scan buffers).
    let maxListLength: Int

    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, dimension: Int, rows: Int) throws {
        func corrupt(_ at: Int, _ why: String) -> TidepoolError { .corrupt(file: file, offset: fileOffset + at, reason: why) }
        let h = try IVFHeader.decode(bytes, corrupt)
        let nl = h.nlist, dim = h.dimension, n = h.rows
        guard dim == dimension else { throw corrupt(4, "ivf dimension \(dim), expected \(dimension)") }
        guard n == rows else { throw corrupt(12, "ivf section covers \(n) rows, the segment has \(rows)") }
        guard nl >= 1, nl <= max(1, rows) else { throw corrupt(0, "ivf list count \(nl) out of range for \(rows) rows") }
        let listsEnd = IVFHeader.size + 4 * (nl * dim + nl + 1 + n)
        guard bytes.count >= listsEnd else { throw corrupt(0, "ivf section holds \(bytes.count) bytes, its lists need \(listsEnd)") }
        nlist = nl; self.dimension = dim; self.rows = n; codec = h.codec
        let base = bytes.baseAddress!
        centroids = (base + IVFHeader.size).assumingMemoryBound(to: Float.self)
        for i in 0..<(nl * dim) where !centroids[i].isFinite {
            throw corrupt(IVFHeader.size + 4 * i, "ivf centroid value is not finite")
        }
        let offsetsAt = IVFHeader.size + 4 * nl * dim
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
        if h.codec == .flat {
            guard bytes.count == align64(listsEnd) else {
                throw corrupt(0, "ivf section holds \(bytes.count) bytes, expected \(align64(listsEnd))")
            }
            codes = .flat
            return
        }
        let at = h.codecOffset
        guard at >= listsEnd, at % 64 == 0, at <= bytes.count else { throw corrupt(16, "ivf codec offset \(at) out of range") }
        let block = UnsafeRawBufferPointer(rebasing: bytes[at...])
        func corruptInBlock(_ offset: Int, _ why: String) -> TidepoolError { corrupt(at + offset, why) }
        switch h.codec {
        case .flat:
            codes = .flat
        case .sq8:
            codes = .sq8(try SQ8View(bytes: block, file: file, fileOffset: fileOffset + at, dimension: dim, rows: n))
        case .pq:
            codes = .pq(try PQCodes(block: block, dimension: dim, rows: n, offsets: offsets, nlist: nl, corruptInBlock))
        case .rabitq:
            codes = .rabitq(try RaBitQCodes(block: block, dimension: dim, rows: n, nlist: nl, corruptInBlock))
        }
    }

    /// The positions (in list order, indexes of `rowIDs` and of the codes) of list `i`'s rows.
    @inline(__always) func list(_ i: Int) -> Range<Int> { Int(offsets[i])..<Int(offsets[i + 1]) }

    /// The PQ sub-space count (0 without PQ), for the planner.
    var pqSubspaces: Int {
        if case .pq(let p) = codes { return p.m }
        return 0
    }
}
