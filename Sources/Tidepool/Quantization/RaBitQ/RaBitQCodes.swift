import Foundation
import TidepoolKernels

/// The RaBitQ block of an IVF section: the rotation, the rotated list centroids, and per row (in
/// list order) its factors and sign-bit code of the residual to its list's centroid.
///
///     header (64 bytes): u32 dimension, u32 words, u32 nlist, u32[13] reserved
///     f32 rotation[dim × dim], f32 rotated centroids[nlist × dim], f32 factors[rows × 4],
///     zero padding to 64, u64 codes[rows × words]
struct RaBitQCodes: @unchecked Sendable {
    static let headerSize = 64

    let quantizer: RaBitQ
    let rotatedCentroids: UnsafePointer<Float>
    let factors: UnsafePointer<Float>
    let codes: UnsafePointer<UInt64>
    /// Resolved once per segment, not per query.
    let kernels: UnsafePointer<tp_rabitq_table>

    /// Where the parts start, relative to the block.
    private struct Layout {
        let dimension: Int, nlist: Int, rows: Int
        var rotationAt: Int { RaBitQCodes.headerSize }
        var factorsAt: Int { rotationAt + 4 * (dimension * dimension + nlist * dimension) }
        var codesAt: Int { align64(factorsAt + 4 * RaBitQ.factorCount * rows) }
        var words: Int { (dimension + 63) / 64 }
        var totalBytes: Int { codesAt + 8 * words * rows }
    }

    /// Draws the rotation and encodes every row of `lists`, in parallel.
    static func encode(_ vectors: UnsafePointer<Float>, lists: IVFLists, seed: UInt64, threads: Int) -> [UInt8] {
        let d = lists.dimension, nlist = lists.nlist, count = lists.rows
        let q = RaBitQ(dimension: d, rotation: RaBitQ.randomRotation(dimension: d, seed: seed))
        let layout = Layout(dimension: d, nlist: nlist, rows: count)
        let words = q.words
        var out = [UInt8](repeating: 0, count: layout.totalBytes)
        let listOf = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, count))
        defer { listOf.deallocate() }
        for l in 0..<nlist { for i in lists.list(l) { listOf[i] = Int32(l) } }
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(d).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt32(words).littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: UInt32(nlist).littleEndian, toByteOffset: 8, as: UInt32.self)
            let base = raw.baseAddress!
            let rot = (base + layout.rotationAt).assumingMemoryBound(to: Float.self)
            for i in 0..<(d * d) { rot[i] = q.rotation[i] }
            let rc = rot + d * d
            lists.centroids.withUnsafeBufferPointer { c in for l in 0..<nlist { q.rotate(c.baseAddress! + l * d, into: rc + l * d) } }
            nonisolated(unsafe) let factors = (base + layout.factorsAt).assumingMemoryBound(to: Float.self)
            nonisolated(unsafe) let codes = (base + layout.codesAt).assumingMemoryBound(to: UInt64.self)
            nonisolated(unsafe) let src = vectors, listRows = listOf
            let order = lists.order
            let chunk = 4096, chunks = (count + chunk - 1) / chunk
            let workers = max(1, min(threads, chunks))
            lists.centroids.withUnsafeBufferPointer { cbuf in
                nonisolated(unsafe) let cp = cbuf.baseAddress!
                runOnBuildThreads(workers) { w in
                    let work = UnsafeMutablePointer<Float>.allocate(capacity: 2 * d)
                    defer { work.deallocate() }
                    var c = w
                    while c < chunks {
                        for i in (c * chunk)..<min(count, (c + 1) * chunk) {
                            q.encode(
                                src + Int(order[i]) * d, centroid: cp + Int(listRows[i]) * d, code: codes + i * words,
                                factors: factors + i * RaBitQ.factorCount, work: work)
                        }
                        c += workers
                    }
                }
            }
        }
        return out
    }

    /// Reads a block of `bytes` (from the codec offset to the section's end); `corrupt` takes
    /// block-relative offsets.
    init(
        block bytes: UnsafeRawBufferPointer, dimension dim: Int, rows n: Int, nlist nl: Int,
        _ corrupt: (Int, String) -> TidepoolError
    ) throws {
        guard bytes.count >= RaBitQCodes.headerSize else { throw corrupt(0, "rabitq block shorter than its header") }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        let rdim = u32(0), words = u32(4), rlists = u32(8)
        guard rdim == dim, words == (dim + 63) / 64, rlists == nl else {
            throw corrupt(0, "rabitq block has dimension \(rdim), \(words) words, \(rlists) lists")
        }
        let layout = Layout(dimension: dim, nlist: nl, rows: n)
        guard bytes.count == layout.totalBytes else {
            throw corrupt(0, "rabitq block holds \(bytes.count) bytes, expected \(layout.totalBytes)")
        }
        let base = bytes.baseAddress!
        let floats = (base + layout.rotationAt).assumingMemoryBound(to: Float.self)
        let factorWords = (layout.factorsAt - layout.rotationAt) / 4
        for i in 0..<(factorWords + RaBitQ.factorCount * n) where !floats[i].isFinite {
            throw corrupt(layout.rotationAt + 4 * i, "rabitq value is not finite")
        }
        for i in 0..<n where !(floats[factorWords + i * RaBitQ.factorCount + 1] > 0) {
            throw corrupt(layout.factorsAt + 4 * (i * RaBitQ.factorCount + 1), "rabitq factor is not positive")
        }
        quantizer = RaBitQ(dimension: dim, rotation: Array(UnsafeBufferPointer(start: floats, count: dim * dim)))
        rotatedCentroids = UnsafePointer(floats + dim * dim)
        factors = (base + layout.factorsAt).assumingMemoryBound(to: Float.self)
        codes = (base + layout.codesAt).assumingMemoryBound(to: UInt64.self)
        kernels = tp_rabitq_kernels()
    }
}
