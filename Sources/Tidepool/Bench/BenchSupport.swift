import TidepoolKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Helpers for `tidepool bench` and the crash-test writer: visible to this package's modules
// (`package`), not part of the library's public API.

/// The SIMD kernel variant chosen for this CPU ("avx512f", "avx2-fma", "neon" or "scalar").
package var simdKernelName: String { String(cString: tp_f32_kernels().pointee.name) }

/// Trains k-means centroids (Lloyd iterations, k-means++ seeding on a subsample, at most 256
/// training points per centroid) — the clustering behind IVF lists and PQ codebooks, for `tidepool bench kmeans`.
///
/// - Parameters:
///   - vectors: `count × dimension` row-major floats.
///   - seed: the same seed and data give the same centroids, whatever `threads` is.
/// - Returns: `k × dimension` centroids and the training points' mean squared distance to theirs.
package func kMeansCentroids(
    _ vectors: UnsafeBufferPointer<Float>, dimension: Int, k: Int, iterations: Int = 10,
    seed: UInt64 = 1, threads: Int = 1
) throws -> (centroids: [Float], meanSquaredError: Double) {
    guard dimension >= 1, vectors.count % dimension == 0, vectors.count >= dimension else {
        throw TidepoolError.invalidArgument("k-means needs at least one vector of dimension \(dimension), got \(vectors.count) floats")
    }
    guard k >= 1, k <= 1 << 20 else { throw TidepoolError.invalidArgument("k-means k must be in 1...1048576, got \(k)") }
    guard (1...1000).contains(iterations) else {
        throw TidepoolError.invalidArgument("k-means iterations must be in 1...1000, got \(iterations)")
    }
    let r = KMeans(k: k, iterations: iterations, seed: seed, threads: max(1, threads))
        .train(vectors.baseAddress!, count: vectors.count / dimension, dimension: dimension)
    return (r.centroids, r.meanSquaredError)
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`), or 0.
package func currentResidentBytes() -> Int {
    #if os(Linux)
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, resident = 0
    guard
        withUnsafeMutablePointer(
            to: &size,
            { s in
                withUnsafeMutablePointer(to: &resident) { r in fscanf_two(f, s, r) }
            })
    else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    #else
    return 0
    #endif
}

#if os(Linux)
private func fscanf_two(_ f: UnsafeMutablePointer<FILE>, _ a: UnsafeMutablePointer<Int>, _ b: UnsafeMutablePointer<Int>) -> Bool {
    var buf = [CChar](repeating: 0, count: 256)
    guard fgets(&buf, 256, f) != nil else { return false }
    let line = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
    guard parts.count >= 2, let x = Int(parts[0]), let y = Int(parts[1]) else { return false }
    a.pointee = x
    b.pointee = y
    return true
}

#endif

/// Returns freed heap memory to the OS so resident-size measurements mean something.
package func releaseFreeHeapMemory() { tp_release_free_heap() }
