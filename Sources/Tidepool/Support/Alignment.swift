/// Rounds up to a multiple of 64 bytes: every section and sub-block of the file formats starts
/// on a cache line, so the vectors and codes mapped from them are aligned for SIMD loads.
@inline(__always) func align64(_ x: Int) -> Int { (x + 63) & ~63 }
