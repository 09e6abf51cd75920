extension VarintGraph {
    /// Every list decodes within its bytes to at most M0 (level 0) or M (upper) ascending ids in
    /// range, the lists tile both streams exactly, and every upper link leads to a node on that
    /// level — so the unchecked decoding a search uses never reads out of bounds. Offsets passed
    /// to `corrupt` are block-relative.
    func validate(_ corrupt: (Int, String) -> TidepoolError) throws {
        let h = header, o = layout
        try upperNodes.validate(
            nodes: h.count, upperSize: h.upperSize, unit: "byte", idsAt: o.upperIDsOffset,
            startsAt: o.upperStartsOffset, corrupt)
        for i in 0..<upperNodes.count {
            if upperLevels[i] == 0 || Int(upperLevels[i]) > h.maxLevel {
                throw corrupt(
                    o.upperLevelsOffset + i, "HNSW upper node \(upperNodes.ids[i]) has level \(upperLevels[i]) (1...\(h.maxLevel))")
            }
            if upperNodes.starts[i + 1] < upperNodes.starts[i] {
                throw corrupt(o.upperStartsOffset + 4 * (i + 1), "HNSW upper starts fall at upper node \(upperNodes.ids[i])")
            }
        }
        // Level 0: offsets from 0, never falling, ending at the stream's length; each list decodes exactly.
        if offset(0) != 0 { throw corrupt(o.relOffset, "HNSW first level-0 offset \(offset(0)), not 0") }
        if offset(h.count) != o.level0Bytes {
            throw corrupt(
                o.relOffset + o.relBytes * h.count,
                "HNSW last level-0 offset \(offset(h.count)) differs from the stream's \(o.level0Bytes) bytes")
        }
        var links = 0
        for v in 0..<h.count {
            var i = offset(v)
            let end = offset(v + 1)
            if end < i || end > o.level0Bytes {
                throw corrupt(
                    o.relOffset + o.relBytes * (v + 1),
                    "HNSW node \(v) has level-0 offsets \(i)..<\(end) (stream of \(o.level0Bytes) bytes)")
            }
            switch VarintList.decodeChecked(level0, &i, end: end, count: nil, node: UInt32(v), limit: h.m0, nodes: h.count) {
            case .success(let ids): links += ids.count
            case .failure(let d): throw corrupt(o.level0Offset + d.at, "HNSW node \(v)'s level-0 list: \(d.reason)")
            }
        }
        if links != linkCount { throw corrupt(48, "HNSW level-0 lists hold \(links) links, the header says \(linkCount)") }
        // Upper levels: whole lists per level, ending exactly at the next node's start.
        for u in 0..<upperNodes.count {
            let node = upperNodes.ids[u]
            var i = Int(upperNodes.starts[u])
            let end = Int(upperNodes.starts[u + 1])
            for l in 1...Int(upperLevels[u]) {
                let at = i
                guard let c = VarintList.readChecked(upper, &i, end: end), c <= UInt64(h.m) else {
                    throw corrupt(o.upperOffset + at, "HNSW node \(node) level \(l): bad link count")
                }
                switch VarintList.decodeChecked(upper, &i, end: end, count: Int(c), node: node, limit: h.m, nodes: h.count) {
                case .success(let ids):
                    for id in ids where level(id) < l {
                        throw corrupt(o.upperOffset + at, "HNSW level-\(l) link \(id) to a node below level \(l)")
                    }
                case .failure(let d): throw corrupt(o.upperOffset + d.at, "HNSW node \(node) level \(l): \(d.reason)")
                }
            }
            if i != end { throw corrupt(o.upperOffset + i, "HNSW node \(node)'s upper lists end at byte \(i), not \(end)") }
        }
        if h.count > 0 && level(h.entryPoint) != h.maxLevel { throw corrupt(0, "HNSW entry point is not on the top level") }
    }
}
