import Foundation

/// A WAL file on object storage: the WAL writes one per group commit (header and frames), and
/// `sync` creates the object with `If-None-Match: *` — the commit point. A log holding only a
/// header is never created, so opening a collection and idling cost no request.
///
/// If the object already exists it was written by another writer that took over (or by an
/// earlier attempt of this one whose outcome the store never told): the write fails with
/// `fenced` and is not acknowledged.
final class ObjectLog: AppendLog, @unchecked Sendable {
    let name: String
    let storage: ObjectStorage
    private let lock = NSLock()
    private var buffer: [UInt8] = []
    private var created = false
    /// The commit token of the last create tried, to tell after a failure whether it happened.
    private var token: String?

    init(name: String, storage: ObjectStorage) {
        self.name = name
        self.storage = storage
    }

    var size: Int { lock.withLock { buffer.count } }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        try lock.withLock {
            guard !created else {
                throw TidepoolError.invalidArgument("WAL object \(storage.displayPath(name)) is already written; objects are written once")
            }
            buffer.append(contentsOf: bytes)
        }
    }

    func sync() throws {
        let bytes: [UInt8]? = lock.withLock { created || buffer.count <= WALFileHeader.size ? nil : buffer }
        guard let bytes else { return }
        let token = storage.nextToken()
        lock.withLock { self.token = token }
        guard try storage.store.createIfAbsent(name, bytes, token: token) else {
            throw TidepoolError.fenced(
                "WAL object \(storage.displayPath(name)) was already written by another writer; this one acknowledges nothing more")
        }
        lock.withLock { created = true }
    }

    func truncate(to length: Int) throws {
        try lock.withLock {
            guard !created || length >= buffer.count else {
                throw TidepoolError.invalidArgument("WAL object \(storage.displayPath(name)) is written and cannot be cut")
            }
            if length < buffer.count { buffer.removeLast(buffer.count - length) }
        }
    }

    func close() {}

    /// After a create that failed without an answer (the store went away): whether the object
    /// exists anyway, and whose it is.
    enum Outcome { case absent, ours, anothers }

    func outcomeOfFailedCreate() throws -> Outcome {
        guard let head = try storage.store.head(name) else { return .absent }
        return head.token != nil && head.token == lock.withLock({ token }) ? .ours : .anothers
    }
}
