/// A point in time after which a read gives up with `TidepoolError.deadlineExceeded` instead of
/// working on: a server bounds each request's engine time with one, so an expensive filter or
/// query cannot hold a thread for long after its client has been answered. Checked between
/// containers, between search units and every few thousand rows of a row-by-row filter.
public struct Deadline: Sendable, Equatable {
    public let instant: ContinuousClock.Instant

    public init(_ instant: ContinuousClock.Instant) { self.instant = instant }

    /// The deadline `duration` from now.
    public static func after(_ duration: Duration) -> Deadline { Deadline(.now + duration) }

    public var hasPassed: Bool { ContinuousClock.now >= instant }

    /// Throws `deadlineExceeded` naming `what` once the deadline has passed.
    @inline(__always)
    public func check(_ what: @autoclosure () -> String) throws(TidepoolError) {
        if hasPassed { throw TidepoolError.deadlineExceeded(what()) }
    }
}

extension Optional where Wrapped == Deadline {
    @inline(__always)
    func check(_ what: @autoclosure () -> String) throws(TidepoolError) {
        if let d = self { try d.check(what()) }
    }
}
