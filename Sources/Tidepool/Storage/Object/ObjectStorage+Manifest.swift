import Foundation
import TidepoolS3

/// The manifest as numbered immutable versions: `manifest/00000000000000000007`. The newest
/// version is the manifest; committing one is creating the next number, which fails for every
/// writer but the first.
extension ObjectStorage {
    static func manifestKey(_ version: UInt64) -> String { "manifest/" + String(format: "%020llu", version) }

    static func manifestVersion(fromKey key: String) -> UInt64? {
        guard key.hasPrefix("manifest/") else { return nil }
        let digits = key.dropFirst("manifest/".count)
        guard digits.count == 20, digits.allSatisfy(\.isNumber) else { return nil }
        return UInt64(digits)
    }

    /// The newest version: one listing, then probes of the numbers after it (a listing may lag
    /// a create on some stores; a probe does not).
    func newestManifestVersion() throws -> UInt64 {
        var newest = try listedManifestVersion()
        while try store.head(Self.manifestKey(newest + 1)) != nil { newest += 1 }
        return newest
    }

    /// The newest listed version (0: none listed).
    private func listedManifestVersion() throws -> UInt64 {
        try store.list(prefix: "manifest/").compactMap { Self.manifestVersion(fromKey: $0.key) }.max() ?? 0
    }

    /// The newest version's bytes (nil: no manifest yet). After the listing, the listed version's
    /// GET and the probe of the number after it go out together: a start pays two round trips,
    /// not three.
    func readManifest() throws -> [UInt8]? {
        var version = try listedManifestVersion()
        while true {
            let (key, next) = (Self.manifestKey(version), Self.manifestKey(version + 1))
            let probed = runOnThreads(version > 0 ? 2 : 1) { [store] i -> [UInt8]? in
                i == 0 ? try store.head(next).map { _ in [] } : try store.get(key, range: nil)
            }
            guard try probed[0].get() == nil else {
                version += 1  // the listing lagged: the next number exists, so look past it too
                continue
            }
            guard version > 0 else { return nil }
            guard let bytes = try probed[1].get() else { throw missing(key, "GET") }
            setManifestVersion(version)
            return bytes
        }
    }

    func swapManifest(_ bytes: [UInt8]) throws {
        let next = currentManifestVersion + 1
        guard try store.createIfAbsent(Self.manifestKey(next), bytes, token: nextToken()) else {
            throw TidepoolError.fenced(
                "manifest version \(next) at \(displayPath(Self.manifestKey(next))) was committed by another writer; this one stops")
        }
        setManifestVersion(next)
        // Versions well behind the current one are no longer read by anyone that is up to date.
        if next > retainedManifestVersions {
            try? store.delete(Self.manifestKey(next - retainedManifestVersions))
        }
    }

    func removeManifestLeftovers() throws {}
}

extension ObjectStorage {
    /// What is wrong with the retained manifest versions as a history (for `verify`): each
    /// version's generation must be above the one before, and no collection's flushed sequence
    /// number may go back (a writer that committed from a stale manifest after a takeover would
    /// show as either). Versions deleted as too old, or by retention, are skipped.
    func manifestHistoryProblems() -> [String] {
        do {
            let versions = try store.list(prefix: "manifest/").compactMap { Self.manifestVersion(fromKey: $0.key) }.sorted()
            var previous: (version: UInt64, manifest: Manifest)?
            var problems: [String] = []
            for v in versions {
                let key = Self.manifestKey(v)
                guard let bytes = try store.get(key, range: nil) else { continue }
                let m = try Manifest.decode(bytes, file: displayPath(key))
                if let (pv, pm) = previous {
                    if m.generation <= pm.generation {
                        problems.append(
                            "\(displayPath(key)): generation \(m.generation) does not follow version \(pv)'s \(pm.generation)")
                    }
                    for c in m.collections {
                        if let before = pm.collections.first(where: { $0.name == c.name }), c.flushedSeq < before.flushedSeq {
                            problems.append(
                                "\(displayPath(key)): collection '\(c.name)' flushed up to \(c.flushedSeq), "
                                    + "below version \(pv)'s \(before.flushedSeq)")
                        }
                    }
                }
                previous = (v, m)
            }
            return problems
        } catch {
            return ["reading the manifest versions at \(store.location): \(error)"]
        }
    }
}
