import Foundation
import TidepoolS3

/// An `ObjectStore` on S3 or any S3-compatible store, through `TidepoolS3.S3Client`; keys live
/// under the location's prefix.
final class S3ObjectStore: ObjectStore {
    let client: S3Client
    let root: S3Location
    var location: String { root.description }

    init(client: S3Client, root: S3Location) {
        self.client = client
        self.root = root
    }

    func url(_ key: String) -> String { client.url(root.key(key)) }

    var requestStats: [String: ObjectStorageMetrics.Requests] {
        client.stats.snapshot.mapValues { .init(count: $0.count, totalSeconds: $0.totalSeconds, maxSeconds: $0.maxSeconds) }
    }

    private func storageError(_ e: any Error) -> TidepoolError {
        if let e = e as? S3Error { return .storage(e.description) }
        return .storage("\(e)")
    }

    func get(_ key: String, range: Range<Int>?) throws -> [UInt8]? {
        do { return try client.get(root.key(key), range: range)?.bytes } catch { throw storageError(error) }
    }

    func head(_ key: String) throws -> ObjectHead? {
        do {
            return try client.head(root.key(key)).map { ObjectHead(size: $0.size, token: $0.metadata[Self.tokenName]) }
        } catch { throw storageError(error) }
    }

    static let tokenName = "tidepool-commit-token"

    func createIfAbsent(_ key: String, _ bytes: [UInt8], token: String) throws -> Bool {
        let full = root.key(key)
        var lastError: (any Error)?
        // An unknown outcome is resolved by reading the token back: ours means it was created,
        // another means it existed, none means it was not, and the create is tried again (a
        // delayed first attempt landing meanwhile makes the retry fail its condition, then the
        // token read back tells).
        for attempt in 0..<8 {
            if attempt > 0 { usleep(UInt32(min(2_000_000, 50_000 << attempt))) }
            do {
                switch try client.upload(full, bytes, metadata: [Self.tokenName: token], ifAbsent: true) {
                case .written: return true
                case .conditionFailed:
                    guard let head = try client.head(full) else { continue }
                    return head.metadata[Self.tokenName] == token
                }
            } catch let e as S3Error where e.kind == .unknownOutcome || e.kind == .timeout || e.kind == .unreachable {
                lastError = e
                do {
                    if let head = try client.head(full) { return head.metadata[Self.tokenName] == token }
                } catch { lastError = error }
            } catch { throw storageError(error) }
        }
        throw TidepoolError.storage(
            "creating \(url(key)) has an unknown outcome and the store did not answer to resolve it: \(lastError.map { "\($0)" } ?? "")")
    }

    func delete(_ key: String) throws {
        do { try client.delete(root.key(key)) } catch { throw storageError(error) }
    }

    /// CopyObject: the store copies; nothing passes through this process.
    func copy(_ source: String, to key: String) throws -> Int {
        do {
            try client.copy(from: root.key(source), to: root.key(key))
            return 0
        } catch { throw storageError(error) }
    }

    func list(prefix: String) throws -> [ObjectEntry] {
        let strip = root.prefix.isEmpty ? 0 : root.prefix.count + 1
        do {
            return try client.list(prefix: root.key(prefix)).map { ObjectEntry(key: String($0.key.dropFirst(strip)), size: $0.size) }
        } catch { throw storageError(error) }
    }

    func names(under folder: String) throws -> [String] {
        let prefix = root.key(folder) + "/"
        do {
            let listing = try client.list(prefix: prefix, delimiter: "/")
            let names = listing.map { String($0.key.dropFirst(prefix.count)) }.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            return Array(Set(names)).sorted()
        } catch { throw storageError(error) }
    }
}
