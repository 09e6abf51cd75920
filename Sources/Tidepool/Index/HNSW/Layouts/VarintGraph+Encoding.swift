extension VarintGraph {
    /// Encodes the first `count` nodes of a graph held in the builder's fixed layout, renumbered
    /// by `order` (`order[new] = old`; nil keeps the numbering). No list may link past `count`.
    static func encode(
        m: Int, m0: Int, count: Int, maxLevel: Int, entryPoint: UInt32,
        levels: UnsafePointer<UInt8>, upperOffsets: UnsafePointer<UInt32>,
        level0: UnsafePointer<UInt32>, upper: UnsafePointer<UInt32>, order: [UInt32]?
    ) -> [UInt8] {
        precondition(order == nil || order!.count == count, "a row order must name every node once")
        var rank = [UInt32](repeating: 0, count: count)
        if let order {
            for (new, old) in order.enumerated() { rank[Int(old)] = UInt32(new) }
        } else {
            for i in 0..<count { rank[i] = UInt32(i) }
        }
        @inline(__always) func old(_ new: Int) -> Int { order.map { Int($0[new]) } ?? new }

        let relWidth = VarintGraphLayout.relBytes(m0: m0)
        var stream: [UInt8] = []
        stream.reserveCapacity(count * 32)
        var bases: [UInt64] = []
        bases.reserveCapacity(count / VarintGraphLayout.group + 1)
        var rel = [UInt32](repeating: 0, count: count + 1)
        var scratch = [UInt32](repeating: 0, count: max(m0, m))
        var links = 0
        for new in 0...count {
            if new % VarintGraphLayout.group == 0 { bases.append(UInt64(stream.count)) }
            rel[new] = UInt32(stream.count - Int(bases[new / VarintGraphLayout.group]))
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

        let layout = VarintGraphLayout(
            count: count, upperNodes: upperIDs.count, upperBytes: upperStream.count,
            level0Bytes: stream.count, relBytes: relWidth)
        var bytes = [UInt8](repeating: 0, count: layout.totalBytes)
        bytes.withUnsafeMutableBytes { dst in
            let d = dst.baseAddress!
            var w = ByteWriter(capacity: VarintGraphLayout.headerSize)
            GraphHeader(
                version: VarintGraphLayout.version, m: m, m0: m0, maxLevel: maxLevel,
                entryPoint: count == 0 ? 0 : rank[Int(entryPoint)], count: count, upperSize: upperStream.count
            ).encode(into: &w)
            w.u64(UInt64(stream.count))
            w.u64(UInt64(links))
            w.u64(UInt64(upperIDs.count))
            w.u32(UInt32(relWidth))
            w.bytes.withUnsafeBytes { d.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            for (i, v) in upperIDs.enumerated() {
                d.storeBytes(of: v.littleEndian, toByteOffset: layout.upperIDsOffset + 4 * i, as: UInt32.self)
            }
            upperLevels.withUnsafeBytes { (d + layout.upperLevelsOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            for (i, v) in upperStarts.enumerated() {
                d.storeBytes(of: v.littleEndian, toByteOffset: layout.upperStartsOffset + 4 * i, as: UInt32.self)
            }
            for (g, v) in bases.enumerated() {
                d.storeBytes(of: v.littleEndian, toByteOffset: layout.groupBasesOffset + 8 * g, as: UInt64.self)
            }
            for (i, v) in rel.enumerated() {
                if relWidth == 2 {
                    d.storeBytes(of: UInt16(v).littleEndian, toByteOffset: layout.relOffset + 2 * i, as: UInt16.self)
                } else {
                    d.storeBytes(of: v.littleEndian, toByteOffset: layout.relOffset + 4 * i, as: UInt32.self)
                }
            }
            stream.withUnsafeBytes { if $0.count > 0 { (d + layout.level0Offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            upperStream.withUnsafeBytes {
                if $0.count > 0 { (d + layout.upperOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
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
