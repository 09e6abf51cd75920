/// The stored graph layout version 3, written since rows are renumbered in cluster order
/// (`RowOrder`): a node's neighbours are then mostly rows near its own number, so each list
/// is stored sorted, as LEB128 varints — the first neighbour as a zigzag difference from the
/// node itself, each next one as the gap from the previous minus one. On 1M × 128 synthetic data
/// at M 16 that is 28–29 bytes of level-0 links per node instead of 55 with 3-byte ids (version 2).
/// A list is found through a u64 base per group of 64 nodes plus a narrow offset per node
/// (2 bytes when M0 ≤ 208), and upper-level lists are coded the same way, with their count.
///
///     header (128 bytes): magic "TPHNSW\0\3", u32 m, u32 m0, u32 maxLevel, u32 entryPoint,
///                         u64 nodeCount, u64 upperBytes, u64 level0Bytes, u64 level0Links,
///                         u64 upperNodes, u32 relBytes (2 or 4), zero padding
///     upperIDs:     upperNodes u32, ascending: the nodes with a level ≥ 1, padded to 64 bytes
///     upperLevels:  upperNodes u8: each one's top level, padded
///     upperStarts:  (upperNodes + 1) u32: node upperIDs[i]'s lists are bytes starts[i] ..< starts[i+1]
///                   of the upper stream, padded
///     groupBases:   (nodeCount / 64 + 1) u64: where the lists of nodes 64·g ..< 64·(g+1) start, padded
///     rel:          (nodeCount + 1) offsets of relBytes each: node i's list starts at
///                   groupBases[i / 64] + rel[i] of the level-0 stream and ends where node i+1's starts; padded
///     level0:       level0Bytes: the level-0 lists (no count: a list runs to the next one's start), padded
///     upper:        upperBytes: per upper node, levels 1...L, each a varint count, then the list, padded
struct HNSWVarintLayout {
    static let magic: [UInt8] = Array("TPHNSW".utf8) + [0, 3]
    static let headerSize = 128
    /// Nodes per group base.
    static let group = 64

    let count: Int
    let upperNodes: Int
    let upperBytes: Int
    let level0Bytes: Int
    let relBytes: Int

    var groups: Int { count / HNSWVarintLayout.group + 1 }
    var upperIDsOffset: Int { HNSWVarintLayout.headerSize }
    var upperLevelsOffset: Int { align64(upperIDsOffset + 4 * upperNodes) }
    var upperStartsOffset: Int { align64(upperLevelsOffset + upperNodes) }
    var groupBasesOffset: Int { align64(upperStartsOffset + 4 * (upperNodes + 1)) }
    var relOffset: Int { align64(groupBasesOffset + 8 * groups) }
    var level0Offset: Int { align64(relOffset + relBytes * (count + 1)) }
    var upperOffset: Int { align64(level0Offset + level0Bytes) }
    var totalBytes: Int { align64(upperOffset + upperBytes) }

    /// 2-byte offsets within a group hold 63 full lists of 5-byte varints when M0 ≤ 208.
    static func relBytes(m0: Int) -> Int { (group - 1) * m0 * 5 < 1 << 16 ? 2 : 4 }

    /// Encodes the first `count` nodes of a graph held in the builder's fixed layout, renumbered
    /// by `order` (`order[new] = old`; nil keeps the numbering). No list may link past `count`.
    static func encode(m: Int, m0: Int, count: Int, maxLevel: Int, entryPoint: UInt32,
                       levels: UnsafePointer<UInt8>, upperOffsets: UnsafePointer<UInt32>,
                       level0: UnsafePointer<UInt32>, upper: UnsafePointer<UInt32>, order: [UInt32]?) -> [UInt8] {
        precondition(order == nil || order!.count == count, "a row order must name every node once")
        var rank = [UInt32](repeating: 0, count: count)
        if let order { for (new, old) in order.enumerated() { rank[Int(old)] = UInt32(new) } } else { for i in 0..<count { rank[i] = UInt32(i) } }
        @inline(__always) func old(_ new: Int) -> Int { order.map { Int($0[new]) } ?? new }

        let relWidth = relBytes(m0: m0)
        var stream: [UInt8] = []
        stream.reserveCapacity(count * 32)
        var bases: [UInt64] = []
        bases.reserveCapacity(count / group + 1)
        var rel = [UInt32](repeating: 0, count: count + 1)
        var scratch = [UInt32](repeating: 0, count: max(m0, m))
        var links = 0
        for new in 0...count {
            if new % group == 0 { bases.append(UInt64(stream.count)) }
            rel[new] = UInt32(stream.count - Int(bases[new / group]))
            guard new < count else { break }
            let list = level0 + old(new) * (m0 + 1)
            let n = Int(list[0])
            for j in 0..<n { scratch[j] = rank[Int(list[1 + j])] }
            links += appendList(&stream, &scratch, n, node: UInt32(new), withCount: false)
        }

        var upperIDs: [UInt32] = [], upperLevels: [UInt8] = [], upperStarts: [UInt32] = []
        var upperStream: [UInt8] = []
        for new in 0..<count where levels[old(new)] > 0 {
            let o = old(new), top = Int(levels[o])
            upperIDs.append(UInt32(new))
            upperLevels.append(UInt8(top))
            upperStarts.append(UInt32(upperStream.count))
            for l in 1...top {
                let list = upper + Int(upperOffsets[o]) + (l - 1) * (m + 1)
                let n = Int(list[0])
                for j in 0..<n { scratch[j] = rank[Int(list[1 + j])] }
                appendList(&upperStream, &scratch, n, node: UInt32(new), withCount: true)
            }
        }
        upperStarts.append(UInt32(upperStream.count))
        precondition(upperStream.count < 1 << 32, "upper lists of \(upperStream.count) bytes exceed the u32 starts")

        let layout = HNSWVarintLayout(count: count, upperNodes: upperIDs.count, upperBytes: upperStream.count,
                                      level0Bytes: stream.count, relBytes: relWidth)
        var bytes = [UInt8](repeating: 0, count: layout.totalBytes)
        bytes.withUnsafeMutableBytes { dst in
            let d = dst.baseAddress!
            var w = ByteWriter(capacity: headerSize)
            w.raw(magic)
            w.u32(UInt32(m))
            w.u32(UInt32(m0))
            w.u32(UInt32(count == 0 ? 0 : maxLevel))
            w.u32(count == 0 ? 0 : rank[Int(entryPoint)])
            w.u64(UInt64(count))
            w.u64(UInt64(upperStream.count))
            w.u64(UInt64(stream.count))
            w.u64(UInt64(links))
            w.u64(UInt64(upperIDs.count))
            w.u32(UInt32(relWidth))
            w.bytes.withUnsafeBytes { d.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            for (i, v) in upperIDs.enumerated() { d.storeBytes(of: v.littleEndian, toByteOffset: layout.upperIDsOffset + 4 * i, as: UInt32.self) }
            upperLevels.withUnsafeBytes { (d + layout.upperLevelsOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            for (i, v) in upperStarts.enumerated() { d.storeBytes(of: v.littleEndian, toByteOffset: layout.upperStartsOffset + 4 * i, as: UInt32.self) }
            for (g, v) in bases.enumerated() { d.storeBytes(of: v.littleEndian, toByteOffset: layout.groupBasesOffset + 8 * g, as: UInt64.self) }
            for (i, v) in rel.enumerated() {
                if relWidth == 2 { d.storeBytes(of: UInt16(v).littleEndian, toByteOffset: layout.relOffset + 2 * i, as: UInt16.self) }
                else { d.storeBytes(of: v.littleEndian, toByteOffset: layout.relOffset + 4 * i, as: UInt32.self) }
            }
            stream.withUnsafeBytes { if $0.count > 0 { (d + layout.level0Offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            upperStream.withUnsafeBytes { if $0.count > 0 { (d + layout.upperOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        }
        return bytes
    }

    /// Sorts the first `n` ids of `ids` and appends them as a list of `node`.
    /// Returns how many it wrote (a repeated id is written once).
    @discardableResult
    private static func appendList(_ out: inout [UInt8], _ ids: inout [UInt32], _ count: Int, node: UInt32, withCount: Bool) -> Int {
        var n = 0
        ids.withUnsafeMutableBufferPointer { b in
            b[0..<count].sort()
            for j in 0..<count where n == 0 || b[j] != b[n - 1] { b[n] = b[j]; n += 1 }
        }
        if withCount { appendVarint(&out, UInt64(n)) }
        guard n > 0 else { return 0 }
        appendVarint(&out, zigzag(Int64(ids[0]) - Int64(node)))
        for j in 1..<n { appendVarint(&out, UInt64(ids[j] - ids[j - 1] - 1)) }
        return n
    }
}

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

/// Varint lists as stored in layout version 3.
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
    @inline(__always) static func decode(_ p: UnsafePointer<UInt8>, _ i: inout Int, end: Int, count n: Int?, node: UInt32,
                                         into out: UnsafeMutablePointer<UInt32>) -> Int {
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
    static func decodeChecked(_ p: UnsafePointer<UInt8>, _ i: inout Int, end: Int, count: Int?, node: UInt32,
                              limit: Int, nodes: Int) -> Result<[UInt32], ListDamage> {
        let start = i
        if let count, count > limit { return .failure(ListDamage(at: start, reason: "\(count) links, more than \(limit)")) }
        var ids: [UInt32] = []
        var prev: Int64 = 0
        while count.map({ ids.count < $0 }) ?? (i < end) {
            if ids.count == limit { return .failure(ListDamage(at: i, reason: "more than \(limit) links")) }
            let at = i
            guard let v = readChecked(p, &i, end: end) else { return .failure(ListDamage(at: at, reason: "a varint runs past the list's end")) }
            let next: Int64
            if ids.isEmpty { next = Int64(node) &+ unzigzag(v) } else {
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
