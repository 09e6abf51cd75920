import Foundation

/// Per-search working memory, reused across searches through a pool so the hot path allocates
/// nothing: the graph walk's visited marks, heaps and buffers, and each codec's own typed
/// buffers (`SQ8QueryBuffers`, `IVFScratch`, `PQScanScratch`, `RaBitQScanScratch`).
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
    /// The nodes found on level 1 that seed a graph walk's level 0 (`hnswDescend`).
    let upperSeeds = ScratchBuffer<Neighbor>()
    /// Candidate rows awaiting an exact re-rank after a walk over compressed codes.
    let rerankRows = ScratchBuffer<UInt32>()
    /// A query folded into an SQ8 quantizer (graph walks and IVF lists over SQ8 codes).
    let sq8 = SQ8QueryBuffers()
    /// IVF probes, estimates and survivors.
    let ivf = IVFScratch()
    let pq = PQScanScratch()
    let rabitq = RaBitQScanScratch()

    /// The result heap's storage, for at least `count` entries (also IVF's candidate heap).
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
