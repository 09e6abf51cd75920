extension CompactGraph {
    /// Upper nodes ascend and their lists tile `upper` in whole levels; level-0 offsets start at
    /// 0, never fall, end at the link count and give no node more than m0 links; every link is in
    /// range and every upper-level link leads to a node on that level; the entry point is on the
    /// top level. Offsets passed to `corrupt` are block-relative.
    func validate(_ corrupt: (Int, String) -> TidepoolError) throws {
        let h = header, o = layout
        let n = UInt32(h.count)
        try upperNodes.validate(
            nodes: h.count, upperSize: h.upperSize, unit: "word", idsAt: o.upperIDsOffset,
            startsAt: o.upperStartsOffset, corrupt)
        for i in 0..<upperNodes.count {
            let words = Int(upperNodes.starts[i + 1]) - Int(upperNodes.starts[i])
            if words <= 0 || words % (h.m + 1) != 0 || words / (h.m + 1) > h.maxLevel {
                throw corrupt(
                    o.upperStartsOffset + 4 * (i + 1),
                    "HNSW upper node \(upperNodes.ids[i]) has \(words) words of lists (whole levels of \(h.m + 1), at most \(h.maxLevel))")
            }
        }
        var prev = offset(0)
        if prev != 0 { throw corrupt(o.level0OffsetsOffset, "HNSW first level-0 offset \(prev), not 0") }
        for i in 0..<h.count {
            let next = offset(i + 1)
            if next < prev || next - prev > h.m0 {
                throw corrupt(
                    o.level0OffsetsOffset + o.offsetBytes * (i + 1),
                    "HNSW node \(i) has level-0 offsets \(prev)..<\(next) (at most \(h.m0) links)")
            }
            prev = next
        }
        if prev != o.links {
            throw corrupt(
                o.level0OffsetsOffset + o.offsetBytes * h.count, "HNSW last level-0 offset \(prev) differs from the link count \(o.links)")
        }
        let all = LinkList(base: level0, count: o.links, stride: o.idBytes, mask: o.idBytes == 3 ? 0xFF_FFFF : .max)
        for e in 0..<o.links where all[e] >= n { throw corrupt(o.level0LinksOffset + o.idBytes * e, "HNSW link \(all[e]) out of range") }
        for i in 0..<upperNodes.count {
            let node = upperNodes.ids[i]
            let start = Int(upperNodes.starts[i])
            for l in 1...level(node) {
                let word = start + (l - 1) * (h.m + 1)
                let list = upper + word
                if Int(list[0]) > h.m { throw corrupt(o.upperOffset + 4 * word, "HNSW node \(node) level \(l) has \(list[0]) links") }
                for j in 0..<Int(list[0]) where list[1 + j] >= n || level(list[1 + j]) < l {
                    throw corrupt(
                        o.upperOffset + 4 * (word + 1 + j), "HNSW level-\(l) link \(list[1 + j]) out of range or to a node below level \(l)"
                    )
                }
            }
        }
        if h.count > 0 && level(h.entryPoint) != h.maxLevel { throw corrupt(0, "HNSW entry point is not on the top level") }
    }
}
