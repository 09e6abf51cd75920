import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Tidepool

/// A cluster node's background work: it asks the peers for their health every `checkEvery`,
/// and beside that, every `checkEvery` too, takes over the collections it follows whose writer is gone and for which it comes first among
/// the live peers (a collection nobody here follows is taken over by the first write or read
/// that reaches a node), gives up the collections it writes that another node took over (asked
/// once a second, of those used in the last 30 s: an idle one learns it at its next commit,
/// which the store refuses), and brings the collections read lately up to date every
/// `followEvery` (an idle one catches up when it is read).
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
        var lastFollow = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: node.settings.checkEvery)
            if Task.isCancelled { return }
            await takeOverOrphans()
            if ContinuousClock.now - lastSupersededCheck >= .seconds(1) {
                lastSupersededCheck = .now
                await giveUpSuperseded()
            }
            if ContinuousClock.now - lastFollow >= node.settings.followEvery {
                lastFollow = .now
                await catchUpRecentlyRead()
            }
        }
    }

    /// Takes over the collections followed here whose writer is gone, where this node is next.
    private func takeOverOrphans() async {
        let due = node.followed().filter { node.shouldTakeOver($0.name, writer: $0.writer) }.map(\.name)
        await forEach(due) { [node] name in
            // The view may be old (an idle collection another node took over already): look first.
            guard let db = node.openDatabase(for: name) else { return }
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
            guard let db = node.openDatabase(for: name), try db.supersededAsWriter() else { return }
            try node.becomeFollower(name)
        }
    }

    private func catchUpRecentlyRead() async {
        let recent = node.followed(usedWithin: .seconds(60))
        await forEach(recent.map(\.name)) { [node] name in try node.openDatabase(for: name)?.catchUp() }
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
