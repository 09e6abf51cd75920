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

/// A bounded top-k collector over `(distance, key)` pairs, where the key is any
/// 64-bit value (container and row packed). Keeps exactly the first k in (distance, key)
/// order, so ties are resolved the same way whatever order candidates arrive in.
struct TopK {
    private(set) var items: [(dist: Float, key: UInt64)] = []
    let k: Int

    init(k: Int) {
        self.k = k
        items.reserveCapacity(k + 1)
    }

    /// The distance a newcomer must not exceed once full (equal distances compete by key).
    var threshold: Float { items.count < k ? .infinity : items[0].dist }

    /// Whether `a` ranks after `b`.
    @inline(__always) private static func after(_ a: (dist: Float, key: UInt64), _ b: (dist: Float, key: UInt64)) -> Bool {
        a.dist != b.dist ? a.dist > b.dist : a.key > b.key
    }

    mutating func push(_ dist: Float, _ key: UInt64) {
        if items.count < k {
            items.append((dist, key))
            var i = items.count - 1
            while i > 0 {
                let p = (i - 1) >> 1
                if !TopK.after(items[i], items[p]) { break }
                items.swapAt(p, i)
                i = p
            }
        } else if TopK.after(items[0], (dist, key)) {
            items[0] = (dist, key)
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && TopK.after(items[l], items[m]) { m = l }
                if r < n && TopK.after(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
    }

    /// Ascending by distance, ties by key so results are deterministic.
    func sorted() -> [(dist: Float, key: UInt64)] {
        items.sorted { $0.dist != $1.dist ? $0.dist < $1.dist : $0.key < $1.key }
    }
}
