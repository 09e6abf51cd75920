/// Working memory that grows (at least doubling) and never shrinks, reused by one search at a
/// time through the scratch pool, so the hot path allocates nothing. Typed: each buffer is named
/// for what it holds by the scratch that owns it.
final class ScratchBuffer<T> {
    private var pointer: UnsafeMutablePointer<T>?
    private var capacity = 0

    /// Room for at least `count` elements (uninitialized when it has just grown).
    @inline(__always) func reserve(_ count: Int) -> UnsafeMutablePointer<T> {
        if let pointer, count <= capacity { return pointer }
        return grow(count)
    }

    private func grow(_ count: Int) -> UnsafeMutablePointer<T> {
        pointer?.deallocate()
        capacity = max(count, capacity * 2, 1)
        let p = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        pointer = p
        return p
    }

    deinit { pointer?.deallocate() }
}
