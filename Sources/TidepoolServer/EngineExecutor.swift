import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Tidepool

/// Runs engine calls off NIO's event loops and Swift's cooperative pool, on threads of its own
/// (reads and writes on separate pools, so writes waiting for fsync never hold up queries), and
/// admits them fairly: at most `maxInFlight` in flight (queued or running), at most
/// `maxInFlightPerKey` of them for one API key, so no key can take every slot. A slot is held
/// until the engine call returns, even after its request was answered with a timeout, so
/// abandoned work still counts against its key. As a `Service` it stops its threads at
/// shutdown, after the HTTP server has drained.
final class EngineExecutor: Service, Sendable {
    private let readPool: NIOThreadPool
    private let writePool: NIOThreadPool
    private let watchdog = DeadlineWatchdog()
    let maxInFlight: Int
    let maxInFlightPerKey: Int
    private let state = NIOLockedValueBox(State())

    private struct State {
        var started = false
        var stopped = false
        var total = 0
        var perKey: [String: Int] = [:]
    }

    init(readThreads: Int, writeThreads: Int, maxInFlight: Int, maxInFlightPerKey: Int) {
        readPool = NIOThreadPool(numberOfThreads: max(1, readThreads))
        writePool = NIOThreadPool(numberOfThreads: max(1, writeThreads))
        self.maxInFlight = maxInFlight
        self.maxInFlightPerKey = maxInFlightPerKey
    }

    /// Requests in flight now (for metrics and tests).
    var inFlight: Int { state.withLockedValue { $0.total } }

    /// Runs `body` on the engine threads for the key `key`. Throws `overloaded` (429) when the
    /// server or the key has no slot left, `deadline_exceeded` (503) when `timeout` passes first,
    /// and `CancellationError` when the calling task is cancelled (its client went away). In the
    /// last two cases the answer comes at once; `body` finishes on its own, bounded by the
    /// deadline it was given.
    func run<T: Sendable>(
        key: String, write: Bool = false, timeout: TimeAmount, _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try admit(key)
        let call = PendingCall<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                call.start(continuation)
                let watch = watchdog.watch(after: timeout) { call.finish(.failure(APIError.deadlineExceeded(timeout))) }
                (write ? writePool : readPool).submit { work in
                    // The slot is given back before the caller resumes, so a caller that has its
                    // answer never sees its own call still counted.
                    guard case .active = work else {
                        self.watchdog.forget(watch)
                        self.release(key)
                        call.finish(.failure(APIError(.serviceUnavailable, "shutting_down", "the server is shutting down")))
                        return
                    }
                    let result = Result { try body() }
                    self.watchdog.forget(watch)
                    self.release(key)
                    call.finish(result)
                }
                if Task.isCancelled { call.finish(.failure(CancellationError())) }
            }
        } onCancel: {
            call.finish(.failure(CancellationError()))
        }
    }

    private func admit(_ key: String) throws {
        let refusal: APIError? = state.withLockedValue { s in
            if s.stopped { return APIError(.serviceUnavailable, "shutting_down", "the server is shutting down") }
            if s.total >= maxInFlight {
                var e = APIError(.tooManyRequests, "overloaded", "more than \(maxInFlight) requests in flight; retry later")
                e.retryAfter = 1
                return e
            }
            if s.perKey[key, default: 0] >= maxInFlightPerKey {
                var e = APIError(
                    .tooManyRequests, "overloaded", "more than \(maxInFlightPerKey) requests in flight for this API key; retry later")
                e.retryAfter = 1
                return e
            }
            if !s.started {
                readPool.start()
                writePool.start()
                watchdog.start()
                s.started = true
            }
            s.total += 1
            s.perKey[key, default: 0] += 1
            return nil
        }
        if let refusal { throw refusal }
    }

    private func release(_ key: String) {
        state.withLockedValue { s in
            s.total -= 1
            let n = s.perKey[key, default: 1] - 1
            s.perKey[key] = n > 0 ? n : nil
        }
    }

    /// Waits for graceful shutdown, then stops.
    func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }

    /// Refuses new calls, lets running ones finish and stops the threads.
    func stop() async {
        let started = state.withLockedValue { s in
            s.stopped = true
            return s.started
        }
        guard started else { return }
        try? await readPool.shutdownGracefully()
        try? await writePool.shutdownGracefully()
        watchdog.stop()
    }
}

/// One engine call's continuation, resumed exactly once: by the result, the deadline or a
/// cancellation, whichever comes first.
private final class PendingCall<T: Sendable>: Sendable {
    private let continuation = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)

    func start(_ c: CheckedContinuation<T, any Error>) { continuation.withLockedValue { $0 = c } }

    func finish(_ result: Result<T, any Error>) {
        let c = continuation.withLockedValue { c in
            defer { c = nil }
            return c
        }
        c?.resume(with: result)
    }
}

/// Fires callbacks whose deadline has passed, checking every 20 ms on one timer: watching and
/// forgetting a call is a dictionary update under a lock, with no thread woken per request
/// (a timer per request on an event loop cost 15% of the server's query throughput).
/// `@unchecked Sendable`: the Dispatch timer is touched only under its lock.
final class DeadlineWatchdog: @unchecked Sendable {
    private struct Watched {
        var next: UInt64 = 0
        var entries: [UInt64: (deadline: UInt64, fire: @Sendable () -> Void)] = [:]
    }
    private let watched = NIOLockedValueBox(Watched())
    private let timer = NIOLockedValueBox<(any DispatchSourceTimer)?>(nil)

    func start() {
        let t = DispatchSource.makeTimerSource(queue: .global())
        t.schedule(deadline: .now() + .milliseconds(20), repeating: .milliseconds(20), leeway: .milliseconds(10))
        t.setEventHandler { [weak self] in self?.fireOverdue() }
        t.resume()
        timer.withLockedValue { $0 = t }
    }

    func stop() {
        timer.withLockedValue {
            $0?.cancel(); $0 = nil
        }
    }

    /// Calls `fire` once `timeout` has passed, unless `forget` comes first.
    func watch(after timeout: TimeAmount, _ fire: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(max(0, timeout.nanoseconds))
        return watched.withLockedValue { w in
            w.next &+= 1
            w.entries[w.next] = (deadline, fire)
            return w.next
        }
    }

    func forget(_ token: UInt64) { _ = watched.withLockedValue { $0.entries.removeValue(forKey: token) } }

    private func fireOverdue() {
        let now = DispatchTime.now().uptimeNanoseconds
        let due: [@Sendable () -> Void] = watched.withLockedValue { w in
            let overdue = w.entries.filter { $0.value.deadline <= now }
            for k in overdue.keys { w.entries.removeValue(forKey: k) }
            return overdue.map(\.value.fire)
        }
        for f in due { f() }
    }
}
