import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Tidepool

/// A cluster node's background work. It asks the peers for their health every `checkEvery`;
/// beside that, as often, it takes over the collections it follows whose writer is gone and for
/// which it comes first among the live peers (a collection no node follows is taken over by the
/// first write that reaches one); every 5 s it asks, of the collections it wrote in the last
/// 30 s, whether another node took one over, and follows those (a write that finds it out
/// sooner, fenced by the store, does the same at once; an idle collection learns it at its next
/// write); and it closes the collections it follows that were not used for `closeIdleAfter`.
/// Nothing here keeps followed collections caught up: a strong read asks the writer (or holds a
/// lease on its head), an eventual read starts a catch-up when its collection is more than
/// twice `followEvery` behind, so the store is asked in proportion to reads, not to the number
/// of collections a node has open.
struct ClusterOwnership: Service {
    let node: ClusterNode
    /// Takeovers at once (each opens a collection as its writer: a few store round trips).
    let width = 8

    func run() async throws {
        await withGracefulShutdownHandler {
            await ownership()
        } onGracefulShutdown: { [node] in
            node.beginDraining()
        }
    }

    private func ownership() async {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                // The health checks go on their own: a round of takeovers or catch-ups waiting
                // on the store must not leave peers unasked (and so make them look gone).
                group.addTask { await checkHealth() }
                group.addTask { await keepOwners() }
            }
        }
    }

    private func checkHealth() async {
        while !Task.isCancelled {
            await node.health.checkAll()
            try? await Task.sleep(for: node.settings.checkEvery)
        }
    }

    private func keepOwners() async {
        var lastSupersededCheck = ContinuousClock.now
        var lastIdleCheck = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: node.settings.checkEvery)
            if Task.isCancelled { return }
            await takeOverOrphans()
            if ContinuousClock.now - lastSupersededCheck >= .seconds(5) {
                lastSupersededCheck = .now
                await giveUpSuperseded()
            }
            if ContinuousClock.now - lastIdleCheck >= .seconds(1) {
                lastIdleCheck = .now
                _ = try? await NIOThreadPool.singleton.runIfActive { [node] in node.closeIdle() }
            }
        }
    }

    /// Takes over the collections followed here whose writer is gone, where this node is next.
    private func takeOverOrphans() async {
        let due = node.followed().filter { node.shouldTakeOver($0.name, writer: $0.writer) }.map(\.name)
        await forEach(due) { [node] name in
            // The view may be old (an idle collection another node took over already): look first.
            guard let db = node.peekDatabase(for: name) else { return }
            try db.catchUp()
            guard node.shouldTakeOver(name, writer: db.writerURL) else { return }
            node.logger.notice("the writer of collection '\(name)' (\(db.writerURL ?? "none")) is gone: taking it over")
            try node.becomeWriter(name)
        }
    }

    /// Follows the collections written here that another node has taken over.
    private func giveUpSuperseded() async {
        let written = node.written(usedWithin: .seconds(30))
        await forEach(written.map(\.name)) { [node] name in
            guard let db = node.peekDatabase(for: name), try db.supersededAsWriter() else { return }
            try node.becomeFollower(name)
        }
    }

    /// Runs `body` for each name on the engine threads, `width` at a time; failures are logged.
    private func forEach(_ names: [String], _ body: @escaping @Sendable (String) throws -> Void) async {
        guard !names.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            var next = 0
            func add() {
                let name = names[next]
                next += 1
                group.addTask { [node] in
                    do { try await NIOThreadPool.singleton.runIfActive { try body(name) } } catch is CancellationError {
                    } catch {
                        node.logger.warning("collection '\(name)': \(error)")
                    }
                }
            }
            while next < min(width, names.count) { add() }
            while await group.next() != nil { if next < names.count { add() } }
        }
    }
}
