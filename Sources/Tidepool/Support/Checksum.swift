import TidepoolKernels

/// CRC32C (Castagnoli) over raw bytes, hardware-accelerated where the CPU has it.
@inlinable
func crc32c(_ buffer: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return seed }
    return tp_crc32c(seed, base, buffer.count)
}

@inlinable
func crc32c(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { crc32c($0, seed: seed) }
}
