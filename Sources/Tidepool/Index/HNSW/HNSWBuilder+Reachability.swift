/// Linking in the nodes no level-0 list points to. A parallel build strands a few (4-13 of
/// 6,000 in the cluster-order test at two threads: a node's back links are pruned away by
/// neighbours that threads were inserting at the same moment); a search can reach such a node
/// only as the entry point, so it is lost to every query. One pass over the finished graph
/// gives each a link from its nearest out-neighbour that can take one.
extension HNSWBuilder {
    /// Links every stranded node (no level-0 in-link, not the entry point) of the first `rows`
    /// rows from one of its own neighbours: into a list with room, or in place of that list's
    /// farthest member that other lists also link to (so no node is stranded in its place).
    /// Returns how many nodes stayed stranded (none have out-neighbours that could take them).
    /// Call with no insertion running; searches may run (each change is made under the node's lock).
    @discardableResult
    func linkStrandedNodes(rows: Int? = nil) -> Int {
        let rows = min(rows ?? count, count)
        guard rows > 1 else { return 0 }
        var inLinks = [Int32](repeating: 0, count: rows)
        for v in 0..<rows {
            let list = links(UInt32(v), 0)
            for j in 0..<Int(list[0]) where Int(list[1 + j]) < rows { inLinks[Int(list[1 + j])] += 1 }
        }
        let (entry, _) = entry()
        var left: [UInt32] = []
        for v in 0..<rows where inLinks[v] == 0 && UInt32(v) != entry && !skips(v) {
            if !linkFromNearestNeighbour(UInt32(v), rows: rows, inLinks: &inLinks, closerOnly: true) { left.append(UInt32(v)) }
        }
        // Where every neighbour's list is full of nearer nodes, the nearest one's farthest
        // member that others also link to gives way: a link a little long beats a lost node.
        return left.filter { !linkFromNearestNeighbour($0, rows: rows, inLinks: &inLinks, closerOnly: false) }.count
    }

    /// Adds `v` to the level-0 list of its nearest out-neighbour that can take it, keeping
    /// `inLinks` current; false if none could. With `closerOnly`, a full list gives way only
    /// where its farthest replaceable member is farther than `v`.
    private func linkFromNearestNeighbour(_ v: UInt32, rows: Int, inLinks: inout [Int32], closerOnly: Bool) -> Bool {
        let own = links(v, 0)
        let vv = vec(v)
        var neighbours: [(Float, UInt32)] = []
        for j in 0..<Int(own[0]) where Int(own[1 + j]) < rows {
            let u = own[1 + j]
            neighbours.append((distance(vv, vec(u)), u))
        }
        neighbours.sort { $0.0 < $1.0 }
        for (_, u) in neighbours {
            lock(u)
            defer { unlock(u) }
            let list = links(u, 0)
            let n = Int(list[0])
            if n < m0 {
                list[1 + n] = v
                list[0] = UInt32(n + 1)
                inLinks[Int(v)] += 1
                return true
            }
            // Full: replace the farthest member that stays linked from elsewhere, if farther than v.
            let uv = vec(u)
            var worst = -1
            var worstDistance = closerOnly ? distance(uv, vv) : -Float.infinity
            for j in 0..<n where inLinks[Int(list[1 + j])] > 1 {
                let d = distance(uv, vec(list[1 + j]))
                if d > worstDistance {
                    worstDistance = d
                    worst = j
                }
            }
            if worst >= 0 {
                inLinks[Int(list[1 + worst])] -= 1
                list[1 + worst] = v
                inLinks[Int(v)] += 1
                return true
            }
        }
        return false
    }
}
