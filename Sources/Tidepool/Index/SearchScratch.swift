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
    private var rerank = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    private var rerankCapacity = 1

    private var queryFloats = UnsafeMutablePointer<Float>.allocate(capacity: 2)
    private var queryFloatsCapacity = 1

    /// Two buffers of `dimension` floats for a query prepared against a quantizer.
    func queryBuffers(_ dimension: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        if dimension > queryFloatsCapacity {
            queryFloats.deallocate()
            queryFloatsCapacity = dimension
            queryFloats = .allocate(capacity: 2 * dimension)
        }
        return (queryFloats, queryFloats + queryFloatsCapacity)
    }

    private var floatSlots: [(UnsafeMutablePointer<Float>, Int)] = (0..<3).map { _ in (.allocate(capacity: 1), 1) }

    /// Room for `count` floats in one of three independent slots (IVF: centroid distances,
    /// the PQ table, a list's estimated distances).
    func floats(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        if count > floatSlots[slot].1 {
            floatSlots[slot].0.deallocate()
            let capacity = max(count, floatSlots[slot].1 * 2)
            floatSlots[slot] = (.allocate(capacity: capacity), capacity)
        }
        return floatSlots[slot].0
    }

    private var wordSlots: [(UnsafeMutablePointer<UInt64>, Int)] = (0..<2).map { _ in (.allocate(capacity: 1), 1) }

    /// Room for `count` 64-bit words in one of two slots (RaBitQ: query bit planes, popcount sums).
    func words(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<UInt64> {
        if count > wordSlots[slot].1 {
            wordSlots[slot].0.deallocate()
            let capacity = max(count, wordSlots[slot].1 * 2)
            wordSlots[slot] = (.allocate(capacity: capacity), capacity)
        }
        return wordSlots[slot].0
    }

    /// Room for `count` candidate rows awaiting exact re-ranking.
    func rerankBuffer(_ count: Int) -> UnsafeMutablePointer<UInt32> {
        if count > rerankCapacity {
            rerank.deallocate()
            rerankCapacity = max(count, rerankCapacity * 2)
            rerank = .allocate(capacity: rerankCapacity)
        }
        return rerank
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
        rerank.deallocate()
        queryFloats.deallocate()
        for (p, _) in floatSlots { p.deallocate() }
        for (p, _) in wordSlots { p.deallocate() }
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
        if heap > heapCapacity {
            heapB.deallocate()
            heapCapacity = max(heap, heapCapacity * 2)
            heapB = UnsafeMutablePointer<Neighbor>.allocate(capacity: heapCapacity)
        }
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
