/// Which rows a search may return; the graph is still traversed through the others.
protocol RowAdmission {
    /// Live and allowed: may be returned.
    func admits(_ row: UInt32) -> Bool
    /// Allowed by the filter (dead or alive): worth computing a distance for in two-hop mode.
    func allowed(_ row: UInt32) -> Bool
}

/// Live rows.
struct AdmitLive: RowAdmission {
    let dead: DeadFilter
    @inline(__always) func admits(_ row: UInt32) -> Bool { !dead.isDead(row) }
    @inline(__always) func allowed(_ row: UInt32) -> Bool { true }
}

/// Live rows that a filter allows (its bitmap's words).
struct AdmitLiveAllowed: RowAdmission {
    let dead: DeadFilter
    let allowed: UnsafePointer<UInt64>
    @inline(__always) func admits(_ row: UInt32) -> Bool {
        allowed[Int(row >> 6)] & (1 << UInt64(row & 63)) != 0 && !dead.isDead(row)
    }
    @inline(__always) func allowed(_ row: UInt32) -> Bool { allowed[Int(row >> 6)] & (1 << UInt64(row & 63)) != 0 }
}

/// Another admission, restricted to rows below `limit`: a memtable graph that is still being
/// built may link rows a snapshot does not see yet, or rows its exact scan already covers.
struct AdmitBelow<Inner: RowAdmission>: RowAdmission {
    let inner: Inner
    let limit: UInt32
    @inline(__always) func admits(_ row: UInt32) -> Bool { row < limit && inner.admits(row) }
    @inline(__always) func allowed(_ row: UInt32) -> Bool { row < limit && inner.allowed(row) }
}
