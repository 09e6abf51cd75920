import NIOConcurrencyHelpers

/// A generation counter that tasks can wait on without holding a thread: `fire` moves it on
/// and wakes every waiter; `wait(after:timeout:)` returns once it has moved past the value the
/// caller read, or the timeout has passed.
final class AsyncSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = NIOLockedValueBox(State())

    var generation: UInt64 { state.withLockedValue { $0.generation } }

    func fire() {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.generation += 1
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// Returns when the generation is past `after` (at once if it already is) or after `timeout`.
    func wait(after: UInt64, timeout: Duration) async {
        guard timeout > .zero else { return }
        let id = state.withLockedValue { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { s -> Bool in
                if s.generation > after { return true }
                s.waiters[id] = c
                return false
            }
            if now {
                c.resume()
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                self.timeOut(id)
            }
        }
    }

    private func timeOut(_ id: UInt64) {
        state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}
