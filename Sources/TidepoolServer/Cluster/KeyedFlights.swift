import Foundation

/// One piece of work per key at a time, on blocking threads: a caller that finds the key's work
/// running waits for it to end and gets false (it looks again at what that work left); the one
/// that ran it gets true, or its error.
final class KeyedFlights: @unchecked Sendable {
    private let cond = NSCondition()
    private var running: Set<String> = []

    /// Runs `work` for `key` unless work for it is running, in which case it waits for that.
    /// Returns whether this caller ran `work`.
    @discardableResult
    func run(_ key: String, _ work: () throws -> Void) throws -> Bool {
        cond.lock()
        if running.contains(key) {
            while running.contains(key) { cond.wait() }
            cond.unlock()
            return false
        }
        running.insert(key)
        cond.unlock()
        defer {
            cond.lock()
            running.remove(key)
            cond.broadcast()
            cond.unlock()
        }
        try work()
        return true
    }

    /// Whether work for `key` is running now.
    func isRunning(_ key: String) -> Bool { cond.withLock { running.contains(key) } }
}
