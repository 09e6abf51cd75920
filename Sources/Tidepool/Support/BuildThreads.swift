import Foundation
import TidepoolKernels

/// Runs `body(0)…body(workers - 1)` at once, each on a thread of its own at a lower priority
/// (nice + `buildThreadNiceIncrement`), and waits for all: for the CPU-bound parts of index
/// building (graph insertion, k-means, codes, row order).
///
/// Not `DispatchQueue.concurrentPerform`: that takes the dispatch worker threads Swift
/// concurrency runs on — every request a server answers — and holds them for as long as the
/// build runs. Measured on 2 cores with 8 clients upserting: acknowledgements stalled for 3–17 s
/// at a time while a memtable's graph grew. Threads of their own leave those workers free, and
/// their lower priority lets requests go first when the cores are busy.
func runOnBuildThreads(_ workers: Int, _ body: (Int) -> Void) {
    guard workers > 1 else {
        if workers == 1 { body(0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let work = BuildWork(body)
        let done = DispatchGroup()
        for w in 0..<workers {
            done.enter()
            let thread = Thread {
                _ = tp_lower_thread_priority(buildThreadNiceIncrement)
                work.run(w)
                done.leave()
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        done.wait()
        // The threads may outlive this call by a moment; the closure must not (it does not escape).
        work.release()
    }
}

/// How much lower than the process's own a build thread's priority is (Linux nice units): at 5
/// a busy request path gets about three times a build thread's share of a core, and builds
/// still progress under sustained load (so backpressure does not stall writers instead).
let buildThreadNiceIncrement: Int32 = 5

/// The work of `runOnBuildThreads`, handed to its threads. `@unchecked Sendable`: each thread
/// calls `body` with its own index, as `concurrentPerform` would, before the caller releases it.
private final class BuildWork: @unchecked Sendable {
    private var body: ((Int) -> Void)?
    private let lock = NSLock()
    init(_ body: @escaping (Int) -> Void) { self.body = body }
    func run(_ w: Int) { lock.withLock { body }?(w) }
    func release() { lock.withLock { body = nil } }
}
