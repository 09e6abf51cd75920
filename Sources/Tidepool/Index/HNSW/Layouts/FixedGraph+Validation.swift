extension FixedGraph {
    /// Every list within its slots and every link in range; every upper-level link to a node on
    /// that level (the descent reads the lists of the nodes it moves to); the entry point on the
    /// top level. Returns the level-0 link count. Offsets passed to `corrupt` are block-relative.
    static func validate(
        header h: GraphHeader, layout o: FixedGraphLayout, levels: UnsafePointer<UInt8>,
        upperOffsets: UnsafePointer<UInt32>, level0: UnsafePointer<UInt32>, upper: UnsafePointer<UInt32>,
        _ corrupt: (Int, String) -> TidepoolError
    ) throws -> Int {
        let n = UInt32(h.count)
        var links = 0
        for i in 0..<h.count {
            if Int(levels[i]) > h.maxLevel {
                throw corrupt(o.levelsOffset + i, "HNSW node \(i) level \(levels[i]) above max \(h.maxLevel)")
            }
            let l0 = level0 + i * (h.m0 + 1)
            if Int(l0[0]) > h.m0 {
                throw corrupt(o.level0Offset + 4 * i * (h.m0 + 1), "HNSW node \(i) has \(l0[0]) links, more than \(h.m0)")
            }
            for j in 0..<Int(l0[0]) where l0[1 + j] >= n {
                throw corrupt(o.level0Offset + 4 * (i * (h.m0 + 1) + 1 + j), "HNSW link \(l0[1 + j]) out of range")
            }
            links += Int(l0[0])
            if levels[i] > 0
                && (upperOffsets[i] == FixedGraphLayout.none || Int(upperOffsets[i]) + Int(levels[i]) * (h.m + 1) > h.upperSize)
            {
                throw corrupt(o.upperOffsetsOffset + 4 * i, "HNSW upper-level offset of node \(i) out of range")
            }
        }
        for i in 0..<h.count where levels[i] > 0 {
            let start = Int(upperOffsets[i])
            for l in 1...Int(levels[i]) {
                let word = start + (l - 1) * (h.m + 1)
                let list = upper + word
                if Int(list[0]) > h.m { throw corrupt(o.upperOffset + 4 * word, "HNSW node \(i) level \(l) has \(list[0]) links") }
                for j in 0..<Int(list[0]) where list[1 + j] >= n || Int(levels[Int(list[1 + j])]) < l {
                    throw corrupt(
                        o.upperOffset + 4 * (word + 1 + j), "HNSW level-\(l) link \(list[1 + j]) out of range or to a node below level \(l)"
                    )
                }
            }
        }
        if h.count > 0 && Int(levels[Int(h.entryPoint)]) != h.maxLevel { throw corrupt(0, "HNSW entry point is not on the top level") }
        return links
    }
}
