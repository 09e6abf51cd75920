import ArgumentParser
import Foundation
import NIOCore
import Tidepool
import TidepoolServer

extension ServeCommand {
    /// A cluster node's settings from `--peers`, `--role` and `--takeover-after` (nil without
    /// `--peers`: one database, as before).
    func clusterSettings(
        storage: String?, advertised: String?, role: String, followEvery: Double, databaseOptions: DatabaseOptions,
        requestTimeout: TimeAmount
    ) throws -> ClusterNode.Settings? {
        guard let peers else {
            if takeoverAfter != nil { throw ValidationError("--takeover-after needs --peers") }
            if closeIdleAfter != nil { throw ValidationError("--close-idle-after needs --peers") }
            return nil
        }
        guard storage != nil else {
            throw ValidationError("--peers needs --storage: the object store is the cluster's only shared state")
        }
        let list = peers.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty, list.allSatisfy({ $0.hasPrefix("http://") || $0.hasPrefix("https://") }), Set(list).count == list.count
        else {
            throw ValidationError("--peers must be distinct http:// or https:// URLs, got '\(peers)'")
        }
        let canOwn = role != "query"
        if canOwn {
            guard let advertised, list.contains(advertised) else {
                throw ValidationError(
                    "--peers must include this node's own URL (--advertise-url, here \(advertised ?? "none")), or give --role query")
            }
        }
        let after = takeoverAfter ?? 3
        guard after.isFinite, after >= 0.5, after <= 3600 else { throw ValidationError("--takeover-after must be 0.5 to 3600 seconds") }
        let idle = closeIdleAfter ?? 300
        guard idle.isFinite, idle * 1e9 > Double(requestTimeout.nanoseconds), idle <= 86_400 else {
            throw ValidationError("--close-idle-after must be more than --request-timeout and at most 86400 seconds, got \(idle)")
        }
        var settings = ClusterNode.Settings(
            selfURL: advertised, peers: list, canOwn: canOwn, takeoverAfter: .milliseconds(Int64(after * 1000)),
            followEvery: .milliseconds(Int64(followEvery * 1000)), databaseOptions: databaseOptions)
        settings.closeIdleAfter = .milliseconds(Int64(idle * 1000))
        return settings
    }
}
