import Foundation

/// Runs `body(0)…body(n-1)` each on a thread of its own and waits for all: for blocking calls
/// that wait on the network (parts of an upload, ranges of a download), where a thread pool
/// sized to the cores would serialize the waiting.
public func runOnThreads<T: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) throws -> T) -> [Result<T, any Error>] {
    guard n > 1 else { return n == 1 ? [Result { try body(0) }] : [] }
    let slots = ResultSlots<T>(count: n)
    let group = DispatchGroup()
    for i in 0..<n {
        group.enter()
        let thread = Thread {
            slots.set(i, Result { try body(i) })
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
    return slots.all
}

/// Runs `body(0)…body(n-1)` on at most `width` threads of its own, each taking the next index
/// as it finishes one (no waves: a slow call holds up only its own thread), and waits for all.
public func runOnThreads<T: Sendable>(
    _ n: Int, width: Int, _ body: @escaping @Sendable (Int) throws -> T
) -> [Result<T, any Error>] {
    let threads = min(n, max(1, width))
    guard threads < n else { return runOnThreads(n, body) }
    let slots = ResultSlots<T>(count: n)
    let next = NextIndex()
    _ = runOnThreads(threads) { _ in
        while let i = next.take(below: n) { slots.set(i, Result { try body(i) }) }
    }
    return slots.all
}

/// Hands out 0, 1, 2, … to concurrent workers.
private final class NextIndex: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func take(below n: Int) -> Int? {
        lock.withLock {
            guard value < n else { return nil }
            defer { value += 1 }
            return value
        }
    }
}

/// Results filled in by concurrent workers, one slot each.
private final class ResultSlots<T: Sendable>: @unchecked Sendable {
    private var slots: [Result<T, any Error>?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, any Error>) { lock.withLock { slots[i] = r } }
    var all: [Result<T, any Error>] {
        lock.withLock { slots.map { $0 ?? .failure(CancellationError()) } }
    }
}
