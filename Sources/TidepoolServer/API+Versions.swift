import Foundation
import Hummingbird
import Tidepool

/// Versions, snapshots, restores and branches (docs/HTTP.md, "Versions").
extension API {
    func registerVersions(_ v1: RouterGroup<TidepoolRequestContext>) {
        v1.get("collections/:name/versions") { _, context in
            let name = try context.parameters.require("name")
            return try await run(context, write: false, collection: name) { _ in
                let coll = try collection(name)
                return ["version": coll.version, "versions": try coll.versions().map(versionJSON)]
            }
        }
        v1.post("collections/:name/restore") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["version", "time", "sequence"], collection: name)
            return try await write(context, collection: name) { _ in
                let db = try served.database(for: name)
                // `sequence` alone: point in time; else a kept version by number or time.
                if body["sequence"] != nil, body.count == 1 {
                    let sequence = try int(body, "sequence")
                    guard sequence >= 0 else { throw APIError.badRequest("'sequence' must be 0 or more") }
                    return ["version": try db.restoreCollection(name, toSequence: UInt64(sequence))]
                }
                guard body["sequence"] == nil else { throw APIError.badRequest("give one of 'version', 'time' and 'sequence'") }
                return ["version": try db.restoreCollection(name, to: try versionSelector(body))]
            }
        }
        v1.get("collections/:name/snapshots") { _, context in
            let name = try context.parameters.require("name")
            return try await run(context, write: false, collection: name) { _ in
                ["snapshots": try collection(name).snapshots.map(snapshotJSON)]
            }
        }
        v1.post("collections/:name/snapshots") { request, context in
            let name = try context.parameters.require("name")
            let body = try await object(request, allowed: ["name", "version"], collection: name)
            return try await run(context, write: true, collection: name, status: .created) { _ in
                let version = try body["version"].map { _ in UInt64(clamping: try int(body, "version")) }
                return snapshotJSON(try collection(name).createSnapshot(try string(body, "name"), version: version))
            }
        }
        v1.delete("collections/:name/snapshots/:snapshot") { _, context in
            let name = try context.parameters.require("name")
            let snapshot = try context.parameters.require("snapshot")
            return try await run(context, write: true, collection: name) { _ in
                try collection(name).deleteSnapshot(snapshot)
                return ["deleted": snapshot]
            }
        }
        v1.post("collections/:name/branch") { request, context in
            let source = try context.parameters.require("name")
            let body = try await object(request, allowed: ["name", "version", "time"], collection: source)
            let branch = try string(body, "name")
            // The key must reach both: it reads the source and creates the branch.
            if let key = context.apiKey, !key.allows(collection: source) {
                throw APIError(.forbidden, "forbidden", "this API key has no access to collection '\(source)'")
            }
            return try await run(context, write: true, collection: branch, status: .created) { _ in
                let selector = body["version"] == nil && body["time"] == nil ? nil : try versionSelector(body)
                let r = try served.createBranch(branch, from: source, at: selector)
                return [
                    "name": branch, "source": source, "version": r.version, "files_shared": r.filesShared,
                    "bytes_written": r.bytesWritten, "bytes_copied": r.bytesCopied, "seconds": r.seconds,
                ]
            }
        }
    }
}

/// `{"version": N}` or `{"time": "2026-12-07T10:00:00Z"}` (exactly one).
func versionSelector(_ body: [String: JSONValue]) throws -> VersionSelector {
    switch (body["version"], body["time"]) {
    case (.some, nil):
        let n = try int(body, "version")
        guard n >= 1 else { throw APIError.badRequest("'version' must be a version number (1 or more)") }
        return .version(UInt64(n))
    case (nil, .some):
        return .time(try timestamp(try string(body, "time"), "time"))
    default:
        throw APIError.badRequest("give exactly one of 'version' (a number) or 'time' (RFC 3339)")
    }
}

/// A read's `as_of`: a version number, or an RFC 3339 time.
func asOfSelector(_ v: JSONValue?) throws -> VersionSelector? {
    switch v {
    case nil: return nil
    case .int(let n)? where n >= 1: return .version(UInt64(n))
    case .string(let s)?: return .time(try timestamp(s, "as_of"))
    default: throw APIError.badRequest("'as_of' must be a version number (1 or more) or an RFC 3339 time")
    }
}

func timestamp(_ s: String, _ what: String) throws -> Date {
    if let d = parseRFC3339(s) { return d }
    throw APIError.badRequest("'\(what)' must be an RFC 3339 time such as 2026-12-07T10:00:00Z, not '\(s.prefix(64))'")
}

func versionJSON(_ v: CollectionVersion) -> [String: Any] {
    [
        "version": v.number, "time": rfc3339(v.time), "documents": v.documents, "segments": v.segments,
        "snapshots": v.snapshots,
    ]
}

func snapshotJSON(_ s: CollectionSnapshot) -> [String: Any] {
    ["name": s.name, "version": s.version, "created": rfc3339(Date(timeIntervalSince1970: s.created))]
}
