/// A candidate: internal distance and row number within one container.
struct Neighbor {
    var dist: Float
    var id: UInt32
}

/// A binary heap over caller-provided storage. `Max == true` keeps the largest
/// distance on top (a bounded top-k result set); `false` the smallest (a candidate queue).
/// No allocation: the storage belongs to a reusable scratch.
struct RawHeap<Order: HeapOrder> {
    let storage: UnsafeMutablePointer<Neighbor>
    let capacity: Int
    private(set) var count = 0

    init(storage: UnsafeMutablePointer<Neighbor>, capacity: Int) {
        self.storage = storage
        self.capacity = capacity
    }

    var isEmpty: Bool { count == 0 }
    var top: Neighbor { storage[0] }

    @inline(__always) mutating func removeAll() { count = 0 }

    @inline(__always)
    mutating func push(_ n: Neighbor) {
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if !Order.above(n.dist, storage[parent].dist) { break }
            storage[i] = storage[parent]
            i = parent
        }
        storage[i] = n
    }

    @inline(__always)
    @discardableResult
    mutating func pop() -> Neighbor {
        let result = storage[0]
        count -= 1
        if count > 0 { siftDown(storage[count]) }
        return result
    }

    /// Replaces the top with `n` (cheaper than pop + push).
    @inline(__always)
    mutating func replaceTop(_ n: Neighbor) { siftDown(n) }

    @inline(__always)
    private mutating func siftDown(_ n: Neighbor) {
        var i = 0
        let half = count >> 1
        while i < half {
            var child = 2 * i + 1
            if child + 1 < count && Order.above(storage[child + 1].dist, storage[child].dist) { child += 1 }
            if !Order.above(storage[child].dist, n.dist) { break }
            storage[i] = storage[child]
            i = child
        }
        storage[i] = n
    }
}

protocol HeapOrder { static func above(_ a: Float, _ b: Float) -> Bool }
enum MaxOrder: HeapOrder { @inline(__always) static func above(_ a: Float, _ b: Float) -> Bool { a > b } }
enum MinOrder: HeapOrder { @inline(__always) static func above(_ a: Float, _ b: Float) -> Bool { a < b } }

typealias MaxHeap = RawHeap<MaxOrder>
typealias MinHeap = RawHeap<MinOrder>
