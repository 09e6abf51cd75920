import TidepoolKernels

/// CRC32C (Castagnoli) over raw bytes, hardware-accelerated where the CPU has it.
func crc32c(_ buffer: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return seed }
    return crc32cKernel(seed, base, buffer.count)
}

/// Resolved once: checksums run on every WAL frame and segment section.
private let crc32cKernel = tp_crc32c_kernels().pointee.crc32c

func crc32c(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { crc32c($0, seed: seed) }
}
