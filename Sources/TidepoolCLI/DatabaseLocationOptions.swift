import ArgumentParser
import Foundation
import Tidepool

/// Where a command's database is: `--data DIR` (a local directory) or `--storage s3://…` (object
/// storage, with a local cache), and how to reach the store.
struct DatabaseLocationOptions: ParsableArguments {
    @Option(help: "Data directory.") var data: String?
    @OptionGroup var objects: ObjectStorageFlags

    func validate() throws {
        guard (data == nil) != (objects.storage == nil) else {
            throw ValidationError("give exactly one of --data DIR and --storage s3://BUCKET/PREFIX")
        }
    }

    /// The location as `Database(url:)` takes it.
    var url: String { objects.storage ?? data ?? "" }

    var objectStorage: ObjectStorageOptions { objects.options() }

    func open(_ options: DatabaseOptions) throws -> Database {
        try Database(url: url, options: options, objectStorage: objectStorage)
    }
}

/// The flags of a database on object storage, shared by `serve` and the commands that take a
/// location: where it is, the local cache, and how to reach the store.
struct ObjectStorageFlags: ParsableArguments {
    @Option(help: "Object storage location, s3://bucket/prefix (instead of --data); see `tidepool s3-check`.")
    var storage: String?
    @Option(help: "Cache directory for object storage (default: under the temporary directory).") var cacheDir: String?
    @Option(help: "Cache budget for object storage, e.g. 20GiB (default 4GiB).", transform: parseByteCount)
    var cacheBytes: Int?
    @OptionGroup var store: ObjectStoreOptions

    func validate() throws { try Self.check(storage: storage) }

    /// Refuses a location that is not an `s3://` URL (a flag's or a configuration file's).
    static func check(storage: String?) throws {
        if let storage, !storage.hasPrefix("s3://") { throw ValidationError("--storage must be an s3:// URL, got '\(storage)'") }
    }

    /// The options for `Database(url:options:objectStorage:)`; the cache's from the flags, else
    /// the given fallbacks (a configuration file's), else 4 GiB under the temporary directory.
    func options(
        cacheDirectory fallbackDirectory: String? = nil, cacheBytes fallbackBytes: Int? = nil, advertisedURL: String? = nil,
        walMinSpacing: Duration = .zero, garbageGrace: Duration = .seconds(600)
    ) -> ObjectStorageOptions {
        ObjectStorageOptions(
            endpoint: store.endpoint, region: store.region, pathStyle: store.pathStyle, cacheDirectory: cacheDir ?? fallbackDirectory,
            cacheBytes: cacheBytes ?? fallbackBytes ?? 4 << 30, advertisedURL: advertisedURL, walMinSpacing: walMinSpacing,
            garbageGrace: garbageGrace)
    }
}

/// `20GiB`, `512MiB`, `100MB`, `4096`: a byte count.
func parseByteCount(_ s: String) throws -> Int {
    let units: [(String, Int)] = [
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000),
        ("TB", 1_000_000_000_000), ("B", 1),
    ]
    for (suffix, scale) in units where s.hasSuffix(suffix) {
        guard let n = Double(s.dropLast(suffix.count)), n.isFinite, n > 0, n * Double(scale) < 9e18 else { break }
        return Int(n * Double(scale))
    }
    if let n = Int(s), n > 0 { return n }
    throw ValidationError("'\(s)' is not a byte count (4096, 512MiB, 20GiB, …)")
}
