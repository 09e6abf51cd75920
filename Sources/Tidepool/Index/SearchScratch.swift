import Foundation

/// Per-search working memory (visited marks, heaps, distance buffers), reused
/// across searches through a pool so the hot path allocates nothing.
final class SearchScratch {
    private(set) var visited: UnsafeMutablePointer<UInt16>
    private(set) var visitedCapacity: Int
    private(set) var generation: UInt16 = 0
    private(set) var heapA: UnsafeMutablePointer<Neighbor>
    private(set) var heapB: UnsafeMutablePointer<Neighbor>
    private(set) var heapCapacity: Int
    private(set) var candidateCapacity: Int
    let neighborBuffer: UnsafeMutablePointer<UInt32>
    static let neighborBufferCapacity = 4096
    let distanceBuffer: UnsafeMutablePointer<Float>
    static let distanceBufferCapacity = 1024
    /// A copy of one link list (at most 2,048 neighbours, the largest m0 a graph may have).
    let linkBuffer: UnsafeMutablePointer<UInt32>
    private var rerank = GrowableBuffer<UInt32>()
    private var queryFloats = GrowableBuffer<Float>()
    private var floatSlots = [GrowableBuffer<Float>](repeating: .init(), count: 3)
    private var wordSlot = GrowableBuffer<UInt64>()
    private var uintSlots = [GrowableBuffer<UInt32>](repeating: .init(), count: 3)

    /// Two buffers of `dimension` floats for a query prepared against a quantizer.
    func queryBuffers(_ dimension: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let p = queryFloats.reserve(2 * dimension)
        return (p, p + dimension)
    }

    /// Room for `count` floats in one of three independent slots (IVF: centroid distances,
    /// the PQ table or rotated query, a list's estimates or lower bounds).
    func floats(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> { floatSlots[slot].reserve(count) }

    /// Room for `count` 64-bit words (RaBitQ: the query's bit planes).
    func words(_ count: Int) -> UnsafeMutablePointer<UInt64> { wordSlot.reserve(count) }

    /// Room for `count` u32 in one of three slots (RaBitQ: popcount sums, popcounts, surviving rows).
    func uints(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<UInt32> { uintSlots[slot].reserve(count) }

    /// Room for `count` candidate rows awaiting exact re-ranking.
    func rerankBuffer(_ count: Int) -> UnsafeMutablePointer<UInt32> { rerank.reserve(count) }

    /// The result heap's storage, for at least `count` entries (IVF's candidate heap).
    func resultHeap(_ count: Int) -> UnsafeMutablePointer<Neighbor> {
        if count > heapCapacity {
            heapB.deallocate()
            heapCapacity = max(count, heapCapacity * 2)
            heapB = UnsafeMutablePointer<Neighbor>.allocate(capacity: heapCapacity)
        }
        return heapB
    }

    init() {
        visitedCapacity = 0
        visited = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
        heapCapacity = 0
        candidateCapacity = 0
        heapA = UnsafeMutablePointer<Neighbor>.allocate(capacity: 1)
        heapB = UnsafeMutablePointer<Neighbor>.allocate(capacity: 1)
        neighborBuffer = UnsafeMutablePointer<UInt32>.allocate(capacity: SearchScratch.neighborBufferCapacity)
        distanceBuffer = UnsafeMutablePointer<Float>.allocate(capacity: SearchScratch.distanceBufferCapacity)
        linkBuffer = UnsafeMutablePointer<UInt32>.allocate(capacity: 2_049)
    }

    deinit {
        visited.deallocate()
        heapA.deallocate()
        heapB.deallocate()
        neighborBuffer.deallocate()
        distanceBuffer.deallocate()
        linkBuffer.deallocate()
        rerank.free()
        queryFloats.free()
        for i in floatSlots.indices { floatSlots[i].free() }
        wordSlot.free()
        for i in uintSlots.indices { uintSlots[i].free() }
    }

    /// Prepares for a search over `nodes` nodes with a result heap of `heap` entries
    /// (the candidate heap `heapA` holds every node at most once, so it gets `nodes + 1`);
    /// returns the generation that marks a node visited.
    func begin(nodes: Int, heap: Int) -> UInt16 {
        if nodes + 1 > candidateCapacity || heap > candidateCapacity {
            heapA.deallocate()
            candidateCapacity = max(nodes + 1, heap, candidateCapacity * 2)
            heapA = UnsafeMutablePointer<Neighbor>.allocate(capacity: candidateCapacity)
        }
        if nodes > visitedCapacity {
            visited.deallocate()
            visitedCapacity = max(nodes, visitedCapacity * 2)
            visited = UnsafeMutablePointer<UInt16>.allocate(capacity: visitedCapacity)
            visited.initialize(repeating: 0, count: visitedCapacity)
            generation = 0
        }
        _ = resultHeap(heap)
        if generation == UInt16.max {
            visited.update(repeating: 0, count: visitedCapacity)
            generation = 0
        }
        generation &+= 1
        return generation
    }
}

/// A pool of scratches shared by all searches of a process.
final class ScratchPool: @unchecked Sendable {
    static let shared = ScratchPool()
    private let lock = NSLock()
    private var free: [SearchScratch] = []

    func withScratch<R>(_ body: (SearchScratch) throws -> R) rethrows -> R {
        lock.lock()
        let s = free.popLast() ?? SearchScratch()
        lock.unlock()
        defer {
            lock.lock()
            free.append(s)
            lock.unlock()
        }
        return try body(s)
    }
}

/// A buffer that grows (at least doubling) and never shrinks; owned by one scratch, freed by it.
struct GrowableBuffer<T> {
    private var pointer: UnsafeMutablePointer<T>? = nil
    private var capacity = 0

    mutating func reserve(_ count: Int) -> UnsafeMutablePointer<T> {
        if let pointer, count <= capacity { return pointer }
        pointer?.deallocate()
        capacity = max(count, capacity * 2, 1)
        let p = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        pointer = p
        return p
    }

    mutating func free() {
        pointer?.deallocate()
        pointer = nil
        capacity = 0
    }
}
