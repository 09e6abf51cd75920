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

/// Where a result lives: its container's index in the search's snapshot (segments first, then
/// memtables) and its row there, packed into the 64-bit key `TopK` breaks ties by (so equal
/// distances resolve the same way whatever order containers are searched in).
struct RowKey: Hashable {
    let container: Int
    let row: UInt32

    @inline(__always) init(container: Int, row: UInt32) {
        self.container = container
        self.row = row
    }

    @inline(__always) init(packed: UInt64) {
        container = Int(packed >> 32)
        row = UInt32(truncatingIfNeeded: packed)
    }

    @inline(__always) var packed: UInt64 { UInt64(container) << 32 | UInt64(row) }
}
