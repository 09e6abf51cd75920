/// Where each live document is: its id → its row (`RowRef`).
///
/// Integer ids (the common case) live in a dictionary keyed by `UInt64` rather than by
/// `DocumentID`, whose string payload makes every key 24 bytes: an entry is then 24 bytes, not
/// 40, which at a million documents is 48 MB rather than 80 (the largest thing a cold-tier
/// process holds besides the pinned codes; docs/COLD_TIER.md). String ids have their own map.
struct IDMap {
    private var integers: [UInt64: RowRef] = [:]
    private var strings: [String: RowRef] = [:]

    var count: Int { integers.count + strings.count }

    subscript(id: DocumentID) -> RowRef? {
        get {
            switch id {
            case .uint(let v): return integers[v]
            case .string(let s): return strings[s]
            }
        }
        set {
            switch id {
            case .uint(let v): integers[v] = newValue
            case .string(let s): strings[s] = newValue
            }
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: DocumentID) -> RowRef? {
        switch id {
        case .uint(let v): return integers.removeValue(forKey: v)
        case .string(let s): return strings.removeValue(forKey: s)
        }
    }

    /// Room for `n` integer ids (the usual kind) without rehashing.
    mutating func reserveCapacity(_ n: Int) { integers.reserveCapacity(n) }
}
