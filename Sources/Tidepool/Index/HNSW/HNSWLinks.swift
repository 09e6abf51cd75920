import TidepoolKernels

/// Where a search reads link lists: a stored graph, read in place without locks (one type per
/// layout, `Layouts/`), or a graph still being built (the in-memory tier's `HNSWBuilder`), whose
/// lists are read under each node's lock. The search is generic over it, so each is specialized.
protocol HNSWLinks {
    /// Runs `body` over `node`'s list at `level` ≥ 1 (count, then neighbours). `body` must not read another list.
    func withLinks<R>(_ node: UInt32, level: Int, _ body: (UnsafePointer<UInt32>) -> R) -> R
    /// Runs `body` over `node`'s level-0 links. `body` must not read another list.
    func withLevel0<R>(_ node: UInt32, _ body: (LinkList) -> R) -> R
    /// Pulls in `node`'s level-0 links (a hint: no lock is taken).
    func prefetchLevel0(_ node: UInt32)
    /// Pulls in where `node`'s level-0 links start, when finding them takes a load of its own
    /// (compact layouts), so expanding a candidate later costs one miss, not two.
    func prefetchLevel0Index(_ node: UInt32)
}

/// One node's level-0 links, wherever they are stored: `count` ids of `stride` bytes from `base`
/// (4-byte ids in the fixed layout and in decoded varint lists, 3 or 4 in the compact one; a
/// 3-byte id is a 4-byte little-endian load masked to 24 bits).
struct LinkList {
    let base: UnsafeRawPointer
    let count: Int
    let stride: Int
    let mask: UInt32

    @inline(__always) init(base: UnsafeRawPointer, count: Int, stride: Int, mask: UInt32) {
        self.base = base
        self.count = count
        self.stride = stride
        self.mask = mask
    }

    /// A fixed-size list: a u32 count, then u32 ids.
    @inline(__always) init(fixed list: UnsafePointer<UInt32>) {
        self.init(base: UnsafeRawPointer(list + 1), count: Int(list[0]), stride: 4, mask: .max)
    }

    @inline(__always) subscript(j: Int) -> UInt32 {
        UInt32(littleEndian: base.loadUnaligned(fromByteOffset: j &* stride, as: UInt32.self)) & mask
    }
}

/// A list with no links, returned for a node that has no list at a level (never, once a graph
/// is validated; kept so that a lookup cannot read out of bounds).
nonisolated(unsafe) let emptyLinkList: UnsafeMutablePointer<UInt32> = {
    let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()
