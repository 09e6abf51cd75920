@inline(__always) func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
@inline(__always) func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

func appendVarint(_ out: inout [UInt8], _ value: UInt64) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}

/// Varint lists as stored in layout version 3: LEB128, the first id a zigzag difference from the
/// node, each next one the gap from the previous minus one.
enum VarintList {
    /// Reads one varint at `p[i]`, advancing `i`. Only for a stream already validated.
    @inline(__always) static func read(_ p: UnsafePointer<UInt8>, _ i: inout Int) -> UInt64 {
        var b = p[i]
        i &+= 1
        if b < 0x80 { return UInt64(b) }
        var v = UInt64(b & 0x7F)
        var shift: UInt64 = 7
        repeat {
            b = p[i]
            i &+= 1
            v |= UInt64(b & 0x7F) << shift
            shift &+= 7
        } while b >= 0x80
        return v
    }

    /// Decodes `n` ids (or, with `n` nil, ids until `end`) of `node`'s list from `p[i]` into `out`,
    /// advancing `i`; returns how many. Only for a stream already validated.
    @inline(__always) static func decode(
        _ p: UnsafePointer<UInt8>, _ i: inout Int, end: Int, count n: Int?, node: UInt32,
        into out: UnsafeMutablePointer<UInt32>
    ) -> Int {
        let total = n ?? Int.max
        guard total > 0 && i < end else { return 0 }
        var prev = Int64(node) &+ unzigzag(read(p, &i))
        out[0] = UInt32(truncatingIfNeeded: prev)
        var k = 1
        while k < total && i < end {
            prev = prev &+ Int64(bitPattern: read(p, &i)) &+ 1
            out[k] = UInt32(truncatingIfNeeded: prev)
            k &+= 1
        }
        return k
    }

    /// Reads one varint within `i ..< end` of an untrusted stream: nil when it runs past `end`
    /// or past 10 bytes.
    static func readChecked(_ p: UnsafePointer<UInt8>, _ i: inout Int, end: Int) -> UInt64? {
        var v: UInt64 = 0, shift: UInt64 = 0
        while i < end && shift < 64 {
            let b = p[i]
            i += 1
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
        return nil
    }

    /// Decodes a list of an untrusted stream, checking every step: at most `limit` ids, each in
    /// `0 ..< nodes` and ascending; with `count` nil the list must end exactly at `end`.
    /// Returns the ids, or the byte index (from `p`) where the list went wrong and why.
    static func decodeChecked(
        _ p: UnsafePointer<UInt8>, _ i: inout Int, end: Int, count: Int?, node: UInt32,
        limit: Int, nodes: Int
    ) -> Result<[UInt32], ListDamage> {
        let start = i
        if let count, count > limit { return .failure(ListDamage(at: start, reason: "\(count) links, more than \(limit)")) }
        var ids: [UInt32] = []
        var prev: Int64 = 0
        while count.map({ ids.count < $0 }) ?? (i < end) {
            if ids.count == limit { return .failure(ListDamage(at: i, reason: "more than \(limit) links")) }
            let at = i
            guard let v = readChecked(p, &i, end: end) else {
                return .failure(ListDamage(at: at, reason: "a varint runs past the list's end"))
            }
            let next: Int64
            if ids.isEmpty {
                next = Int64(node) &+ unzigzag(v)
            } else {
                guard v < UInt64(nodes) else { return .failure(ListDamage(at: at, reason: "link gap \(v) out of range")) }
                next = prev + Int64(v) + 1
            }
            guard next >= 0 && next < Int64(nodes) else { return .failure(ListDamage(at: at, reason: "link \(next) out of range")) }
            ids.append(UInt32(next))
            prev = next
        }
        return .success(ids)
    }

    struct ListDamage: Error {
        let at: Int
        let reason: String
    }
}
