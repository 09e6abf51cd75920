import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Tidepool

/// Where a write to a cluster node goes: applied here when this node writes the collection (or
/// takes it over now: its writer is gone and this node comes first among the live peers in its
/// rendezvous order), else sent to the collection's writer as its database names it, or, for a
/// collection nobody has created yet, to its owner by rendezvous. A write is forwarded at most
/// once (`X-Tidepool-Forwarded-By`): a node that gets a forwarded write it cannot apply answers
/// 503 `writer_unavailable` with `Retry-After`, and so does one whose collection's writer stopped
/// answering less than `--takeover-after` ago. Runs after `GuardMiddleware` (the caller is known).
struct ClusterWriteRouting: RouterMiddleware {
    typealias Context = TidepoolRequestContext
    let node: ClusterNode
    let maxBody: Int
    let timeout: TimeAmount
    let peer = WriterPeer()

    static let forwardedBy = HTTPField.Name("X-Tidepool-Forwarded-By")!

    enum Decision {
        case local
        case forward(String)
        case unavailable(String)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard WriteForwardingMiddleware.isWrite(request.method, request.uri.path) else { return try await next(request, context) }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maxBody) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "request body is larger than \(maxBody) bytes")
        }
        let parts = request.uri.path.split(separator: "/", omittingEmptySubsequences: true)
        // Creating a collection names it in the body; every other write in the path.
        let creating = parts.count == 2
        let named = creating ? Self.field("name", in: body) : String(parts[2]).removingPercentEncoding
        guard let name = named else { return try await next(request, context) }  // the route refuses it
        let forwarded = request.headers[Self.forwardedBy] != nil
        let isCreate = { creating || (parts.count == 4 && parts[3] == "upsert" && Self.field("create", in: body) != nil) }
        for attempt in 0..<2 {
            switch await decide(name, isCreate: isCreate, forwarded: forwarded) {
            case .local:
                do {
                    return try await next(request, context)
                } catch TidepoolError.fenced where attempt == 0 {
                    // Taken over under this node's feet: nothing was applied; the write goes to
                    // the new writer (this node follows the collection now).
                }
            case .unavailable(let why):
                var e = APIError(.serviceUnavailable, "writer_unavailable", why)
                e.retryAfter = 1
                throw e
            case .forward(let writer):
                do {
                    let answer = try await forward(request, body: body, to: writer)
                    // The node asked was not the writer after all (this node's view was behind):
                    // look again, once, after catching up.
                    guard attempt == 0, answer.errorCode == "writer_unavailable" || answer.errorCode == "not_the_writer"
                    else { return answer.response }
                } catch let failure as WriterPeer.ForwardFailure {
                    // A write that never reached the writer may go elsewhere; any other has an unknown outcome.
                    guard failure.notSent, attempt == 0 else { throw failure.error }
                }
                await catchUp(name)
            }
        }
        var e = APIError(.serviceUnavailable, "writer_unavailable", "no node writes collection '\(name)' now; try again shortly")
        e.retryAfter = 1
        throw e
    }

    /// Forwards the write to `writer`, giving up once the writer counts as gone (stopped or
    /// cut off while it held the write: waiting out the request timeout would stall the
    /// client long after another node took the collection over). The outcome is then unknown.
    private func forward(_ request: Request, body: ByteBuffer, to writer: String) async throws -> WriterPeer.Forwarded {
        try await withThrowingTaskGroup(of: WriterPeer.Forwarded?.self) { group in
            group.addTask {
                try await peer.forward(
                    request, body: body, to: writer, timeout: timeout, headers: [(Self.forwardedBy, node.settings.selfURL ?? "query node")])
            }
            group.addTask {
                while !node.health.isGone(writer) { try await Task.sleep(for: .milliseconds(100)) }
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let answer = first else {
                var e = APIError(
                    .serviceUnavailable, "writer_unavailable",
                    "the writer \(writer) stopped answering while it held this write: its outcome is unknown; send it again")
                e.retryAfter = 1
                throw WriterPeer.ForwardFailure(notSent: false, error: e)
            }
            return answer
        }
    }

    /// Where a write to collection `name` goes now.
    func decide(_ name: String, isCreate: () -> Bool, forwarded: Bool) async -> Decision {
        if node.isWriter(of: name) { return .local }
        let me = node.settings.selfURL
        let opened: Result<Database, any Error> = await onEngineThread { try node.database(for: name) }
        let database: Database?
        switch opened {
        case .success(let db): database = db
        case .failure(TidepoolError.collectionNotFound): database = nil
        case .failure(let e): return .unavailable("collection '\(name)' could not be opened here: \(e)")
        }
        guard let database, database.hasCollection(name) else {
            // Nothing to write to: the API answers 404, unless this creates the collection,
            // which its owner by rendezvous does.
            guard isCreate() else { return .local }
            guard let owner = node.health.owner(of: name) else { return .unavailable("no node that may own collections answers") }
            if owner == me || (forwarded && node.settings.canOwn) { return .local }
            return forwarded ? .unavailable("this node does not own new collections") : .forward(owner)
        }
        let writer = database.writerURL
        if node.shouldTakeOver(name, writer: writer) {
            let taken: Result<Database, any Error> = await onEngineThread { try node.becomeWriter(name) }
            if case .failure(let e) = taken { return .unavailable("taking over collection '\(name)' failed: \(e)") }
            return .local
        }
        if let writer, !node.health.isGone(writer) {
            return forwarded ? .unavailable("this node does not write collection '\(name)'; \(writer) does") : .forward(writer)
        }
        if !forwarded, let owner = node.health.owner(of: name), owner != me { return .forward(owner) }
        let wait = writer.map { node.health.timeUntilGone($0) } ?? .zero
        return .unavailable(
            "the writer of collection '\(name)' (\(writer ?? "none")) does not answer; another node takes it over"
                + (wait > .zero ? " within \(wait.milliseconds) ms" : ""))
    }

    /// Brings this node's view of `name` (its writer above all) up to date.
    private func catchUp(_ name: String) async {
        _ = await onEngineThread { try node.openDatabase(for: name)?.catchUp() }
    }

    private func onEngineThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
        do { return .success(try await NIOThreadPool.singleton.runIfActive(body)) } catch { return .failure(error) }
    }

    /// A top-level field of a JSON object body (a string field's value, or the raw kind for others).
    static func field(_ key: String, in body: ByteBuffer) -> String? {
        guard
            let value = try? body.withUnsafeReadableBytes({ raw throws(JSONParser.Failure) in try JSONParser.parse(raw) }),
            case .object(let object) = value, let field = object[key]
        else { return nil }
        if case .string(let s) = field { return s }
        return "\(field)"
    }
}
