import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Tidepool

/// Runs engine calls (reads and writes) off NIO's event loops and Swift's cooperative pool, on
/// threads of its own, so a slow query never stalls another connection, and admits them fairly:
/// at most `maxInFlight` in flight (queued or running), at most `maxInFlightPerKey` of them for
/// one API key, so no key can take every slot. A slot is held until the engine call returns,
/// even after its request was answered with a timeout, so abandoned work still counts against
/// its key. As a `Service` it stops its threads at shutdown, after the HTTP server has drained.
final class EngineExecutor: Service, Sendable {
    private let pool: NIOThreadPool
    private let eventLoop: any EventLoop
    let maxInFlight: Int
    let maxInFlightPerKey: Int
    private let state = NIOLockedValueBox(State())

    private struct State {
        var started = false
        var stopped = false
        var total = 0
        var perKey: [String: Int] = [:]
    }

    init(threads: Int, maxInFlight: Int, maxInFlightPerKey: Int, eventLoop: any EventLoop) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        self.eventLoop = eventLoop
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
    func run<T: Sendable>(key: String, timeout: TimeAmount, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try admit(key)
        let future = pool.runIfActive(eventLoop: eventLoop) { () throws -> T in
            defer { self.release(key) }
            return try body()
        }
        future.whenFailure { error in
            // Refused by a pool that is shutting down: the body never ran, so its slot is returned here.
            if error is NIOThreadPoolError.ThreadPoolInactive { self.release(key) }
        }
        let once = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)
        @Sendable func finish(_ result: Result<T, any Error>) {
            once.withLockedValue { c in
                c?.resume(with: result)
                c = nil
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                once.withLockedValue { $0 = continuation }
                let timer = eventLoop.scheduleTask(in: timeout) {
                    finish(.failure(APIError.deadlineExceeded(timeout)))
                }
                future.whenComplete { result in
                    timer.cancel()
                    finish(result.mapError(Self.mapped))
                }
                if Task.isCancelled { finish(.failure(CancellationError())) }
            }
        } onCancel: {
            finish(.failure(CancellationError()))
        }
    }

    private static func mapped(_ error: any Error) -> any Error {
        error is NIOThreadPoolError.ThreadPoolInactive
            ? APIError(.serviceUnavailable, "shutting_down", "the server is shutting down") : error
    }

    private func admit(_ key: String) throws {
        let refusal: APIError? = state.withLockedValue { s in
            if s.stopped { return APIError(.serviceUnavailable, "shutting_down", "the server is shutting down") }
            if s.total >= maxInFlight {
                return APIError(.tooManyRequests, "overloaded", "more than \(maxInFlight) requests in flight; retry later")
            }
            if s.perKey[key, default: 0] >= maxInFlightPerKey {
                return APIError(
                    .tooManyRequests, "overloaded", "more than \(maxInFlightPerKey) requests in flight for this API key; retry later")
            }
            if !s.started {
                pool.start()
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

    /// Waits for graceful shutdown, then lets running engine calls finish and stops the threads.
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
        if started { try? await pool.shutdownGracefully() }
    }
}
