import Foundation
import TidepoolKernels

/// f16 storage: each coordinate as an IEEE binary16 (2× smaller than f32, relative error at most
/// 2⁻¹¹ per coordinate in the normal range). Walks read the halves, converted in registers by
/// `tp_f16_table`; the best candidates are re-ranked with f32 like SQ8's.
///
/// Section layout (`f16`, kind 7): u32 dimension, u32 reserved, zero padding to 64 bytes, then
/// `rows × dimension` little-endian binary16 values.
enum HalfPrecision {
    static let headerSize = 64

    static func section(_ vectors: UnsafePointer<Float>, count: Int, dimension: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: headerSize + count * dimension * 2)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(dimension).littleEndian, toByteOffset: 0, as: UInt32.self)
            let halves = (raw.baseAddress! + headerSize).assumingMemoryBound(to: UInt16.self)
            tp_f32_to_f16_array(vectors, halves, count * dimension)
        }
        return out
    }
}

/// A segment's f16 vectors, read in place from the mapped file.
struct F16View: @unchecked Sendable {
    let halves: UnsafePointer<UInt16>

    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, dimension: Int, rows: Int) throws {
        guard bytes.count >= HalfPrecision.headerSize else {
            throw TidepoolError.corrupt(file: file, offset: fileOffset, reason: "f16 section too short")
        }
        let dim = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard dim == dimension, bytes.count == HalfPrecision.headerSize + rows * dim * 2 else {
            throw TidepoolError.corrupt(
                file: file, offset: fileOffset,
                reason:
                    "f16 section of \(bytes.count) bytes for dimension \(dim), expected dimension \(dimension) and \(HalfPrecision.headerSize + rows * dimension * 2) bytes"
            )
        }
        halves = (bytes.baseAddress! + HalfPrecision.headerSize).assumingMemoryBound(to: UInt16.self)
    }
}

/// Distances from f16 vectors (the engine's internal distance: squared L2 or −q·x).
struct F16RowDistance: RowDistance {
    let query: UnsafePointer<Float>
    let halves: UnsafePointer<UInt16>
    let dimension: Int
    let usesDot: Bool
    let kernels: UnsafePointer<tp_f16_table>

    @inline(__always) func callAsFunction(_ row: UInt32) -> Float {
        let h = halves + Int(row) * dimension
        return usesDot ? -kernels.pointee.dot(query, h, dimension) : kernels.pointee.l2(query, h, dimension)
    }
    @inline(__always) func prefetch(_ row: UInt32) { tp_prefetch(halves + Int(row) * dimension) }
    @inline(__always) func prefetchAll(_ row: UInt32) { tp_prefetch_range(halves + Int(row) * dimension, dimension * 2) }
}
