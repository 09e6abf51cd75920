/// A fixed-size set of row numbers, one bit each: what a filter becomes per container.
struct Bitmap: Equatable, Sendable {
    private(set) var words: [UInt64]
    let count: Int

    init(count: Int, filled: Bool = false) {
        self.count = count
        words = [UInt64](repeating: filled ? ~0 : 0, count: (count + 63) / 64)
        if filled { clearTail() }
    }

    init(count: Int, rows: some Sequence<UInt32>) {
        self.init(count: count)
        for r in rows { insert(Int(r)) }
    }

    private mutating func clearTail() {
        let extra = words.count * 64 - count
        if extra > 0 { words[words.count - 1] &= ~0 >> UInt64(extra) }
    }

    @inline(__always) mutating func insert(_ row: Int) { words[row >> 6] |= 1 << UInt64(row & 63) }
    @inline(__always) mutating func remove(_ row: Int) { words[row >> 6] &= ~(1 << UInt64(row & 63)) }
    @inline(__always) func contains(_ row: Int) -> Bool { words[row >> 6] & (1 << UInt64(row & 63)) != 0 }

    var cardinality: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
    /// Set rows within `range`.
    func count(in range: Range<Int>) -> Int {
        guard !range.isEmpty else { return 0 }
        var n = 0
        let first = range.lowerBound >> 6, last = (range.upperBound - 1) >> 6
        for wi in first...min(last, words.count - 1) {
            var w = words[wi]
            if wi == first { w &= ~0 << UInt64(range.lowerBound & 63) }
            if wi == last, range.upperBound & 63 != 0 { w &= (1 << UInt64(range.upperBound & 63)) - 1 }
            n += w.nonzeroBitCount
        }
        return n
    }

    mutating func formIntersection(_ o: Bitmap) { for i in words.indices { words[i] &= o.words[i] } }
    mutating func formUnion(_ o: Bitmap) { for i in words.indices { words[i] |= o.words[i] } }
    mutating func subtract(_ o: Bitmap) { for i in words.indices { words[i] &= ~o.words[i] } }
    mutating func invert() {
        for i in words.indices { words[i] = ~words[i] }
        clearTail()
    }

    /// Calls `body` with each row in ascending order.
    func forEach(_ body: (Int) throws -> Void) rethrows {
        for (wi, w0) in words.enumerated() {
            var w = w0
            while w != 0 {
                let b = w.trailingZeroBitCount
                try body(wi << 6 | b)
                w &= w - 1
            }
        }
    }
}
