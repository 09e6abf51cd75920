import Foundation
import TidepoolKernels
import XCTest

@testable import Tidepool

/// Index builds run on threads of their own at a lower priority, so that they never hold the
/// dispatch workers Swift concurrency (a server's every request) runs on. (What that cost is
/// measured, not unit-tested: acknowledgement stalls of seconds under load, `runOnBuildThreads`.)
final class BuildThreadsTests: XCTestCase {
    func testEveryWorkerRunsOnceOnAThreadOfItsOwnAtALowerPriority() {
        let callerNice = tp_thread_nice()
        let seen = Locked<[(Int, Int32, ObjectIdentifier)]>([])
        // Every worker waits for all five to arrive, so their threads are alive at once and
        // distinct (a thread that ended could hand its identity to the next one).
        let arrived = NSCondition()
        nonisolated(unsafe) var count = 0
        runOnBuildThreads(5) { w in
            seen.withLock { $0.append((w, tp_thread_nice(), ObjectIdentifier(Thread.current))) }
            arrived.lock()
            count += 1
            arrived.broadcast()
            let deadline = Date().addingTimeInterval(10)
            while count < 5 && arrived.wait(until: deadline) {}
            arrived.unlock()
        }
        let all = seen.withLock { $0 }
        XCTAssertEqual(all.map(\.0).sorted(), Array(0..<5))
        XCTAssertEqual(Set(all.map(\.2)).count, 5, "one thread per worker")
        #if os(Linux)
        for (_, nice, _) in all { XCTAssertEqual(nice, min(19, callerNice + buildThreadNiceIncrement)) }
        #endif
        XCTAssertEqual(tp_thread_nice(), callerNice, "the caller's own priority is unchanged")
    }
}
