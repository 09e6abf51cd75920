/// Working memory that grows (at least doubling) and never shrinks, reused by one search at a
/// time through the scratch pool, so the hot path allocates nothing. Typed: each buffer is named
/// for what it holds by the scratch that owns it. Cache-line aligned, so the kernels' 64-byte
/// loads and stores (a PQ byte table, a block's sums) never straddle two lines.
final class ScratchBuffer<T> {
    private var pointer: UnsafeMutablePointer<T>?
    private var capacity = 0

    /// Room for at least `count` elements (uninitialized when it has just grown).
    @inline(__always) func reserve(_ count: Int) -> UnsafeMutablePointer<T> {
        if let pointer, count <= capacity { return pointer }
        return grow(count)
    }

    private func grow(_ count: Int) -> UnsafeMutablePointer<T> {
        pointer.map { UnsafeMutableRawPointer($0).deallocate() }
        capacity = max(count, capacity * 2, 1)
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: capacity * MemoryLayout<T>.stride,
            alignment: max(64, MemoryLayout<T>.alignment))
        let p = raw.bindMemory(to: T.self, capacity: capacity)
        pointer = p
        return p
    }

    deinit { pointer.map { UnsafeMutableRawPointer($0).deallocate() } }
}
