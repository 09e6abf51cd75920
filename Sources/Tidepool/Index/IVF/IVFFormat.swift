import Foundation

/// How an IVF segment's posting lists hold their vectors.
enum IVFCodec: UInt32 {
    /// Row numbers only: distances read the f32 vectors of the segment (exact, no re-ranking).
    case flat = 0
    /// SQ8 codes in list order; candidates re-ranked with f32.
    case sq8 = 1
    /// PQ codes of the residuals to the list centroid; candidates re-ranked with f32.
    case pq = 2
    /// RaBitQ codes of the residuals to the list centroid; candidates whose error bound cannot
    /// beat the k-th exact distance so far are skipped, the rest re-scored with f32.
    case rabitq = 3
}

/// An inverted-file index: k-means centroids partition the segment's rows into `nlist`
/// posting lists; a search ranks the centroids against the query and scans the `nprobe`
/// nearest lists (`IVFSearch`).
///
/// Section layout (kind 8, little-endian; offsets relative to the section):
///
///     0   `IVFHeader`: u32 nlist, u32 dimension, u32 codec, u32 rows, u64 codec offset, u64 reserved
///     32  f32 centroids[nlist × dimension]
///         u32 list offsets[nlist + 1] (into the row list; the last equals rows)
///         u32 rows[rows], list by list: every row of the segment exactly once
///         zero padding to 64
///     codec offset: sq8: an SQ8 block (`ScalarQuantizer` layout) whose codes follow list order;
///                   pq: a `PQCodes` block; rabitq: a `RaBitQCodes` block; flat: nothing.
enum IVFFormat {
    /// Builds the whole section: trains the centroids, assigns every row, encodes the lists.
    /// `pqBlocked` false writes PQ codes in the older list-order layout (tests check it is still read).
    static func build(
        _ vectors: UnsafePointer<Float>, count: Int, dimension: Int, metric: Metric, nlist: Int,
        codec: IVFCodec, pqSubspaces: Int, iterations: Int, seed: UInt64, threads: Int,
        pqBlocked: Bool = true
    ) -> [UInt8] {
        let nlist = max(1, min(nlist, count))
        let km = KMeans(k: nlist, iterations: iterations, seed: seed, threads: threads)
        let centroids = km.train(vectors, count: count, dimension: dimension).centroids
        var assignment = [Int32](repeating: 0, count: count)
        KMeans.assign(
            vectors, count: count, dimension: dimension, centroids: centroids, k: nlist,
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
        let listsEnd = IVFHeader.size + 4 * (nlist * dimension + nlist + 1 + count)
        let codecOffset = align64(listsEnd)
        var w = ByteWriter(capacity: codecOffset)
        IVFHeader(nlist: nlist, dimension: dimension, codec: codec, rows: count, codecOffset: codec == .flat ? 0 : codecOffset).encode(
            into: &w)
        for c in centroids { w.u32(c.bitPattern) }
        for o in offsets { w.u32(o) }
        for r in order { w.u32(r) }
        var out = w.bytes
        out += [UInt8](repeating: 0, count: codecOffset - out.count)
        let lists = IVFLists(offsets: offsets, order: order, centroids: centroids, dimension: dimension)
        switch codec {
        case .flat:
            break
        case .sq8:
            out += ScalarQuantizer.section(vectors, count: count, dimension: dimension, order: order)
        case .pq:
            out += PQCodes.encode(vectors, lists: lists, m: pqSubspaces, seed: seed &+ 7, threads: threads, blocked: pqBlocked)
        case .rabitq:
            out += RaBitQCodes.encode(vectors, lists: lists, seed: seed &+ 11, threads: threads)
        }
        return out
    }
}

/// The IVF section's first 32 bytes.
struct IVFHeader: Equatable {
    static let size = 32

    var nlist: Int
    var dimension: Int
    var codec: IVFCodec
    var rows: Int
    /// Where the codec's block starts in the section (0 for flat lists).
    var codecOffset: Int

    func encode(into w: inout ByteWriter) {
        w.u32(UInt32(nlist))
        w.u32(UInt32(dimension))
        w.u32(codec.rawValue)
        w.u32(UInt32(rows))
        w.u64(UInt64(codecOffset))
        w.u64(0)  // reserved
    }

    /// Reads the header of a section of `bytes.count` bytes; `corrupt` takes section offsets.
    static func decode(_ bytes: UnsafeRawBufferPointer, _ corrupt: (Int, String) -> TidepoolError) throws -> IVFHeader {
        guard bytes.count >= size else { throw corrupt(0, "ivf section too short (\(bytes.count) bytes)") }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        let codecRaw = u32(8)
        guard let codec = IVFCodec(rawValue: codecRaw) else { throw corrupt(8, "unknown ivf codec \(codecRaw)") }
        let offset = Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) & 0xFFFF_FFFF_FFFF)
        return IVFHeader(nlist: Int(u32(0)), dimension: Int(u32(4)), codec: codec, rows: Int(u32(12)), codecOffset: offset)
    }
}
