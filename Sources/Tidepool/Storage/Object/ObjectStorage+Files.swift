import Foundation

/// An immutable file on object storage: written to a cache file, created in the store on
/// `commit` only if no object of that name exists (durable once the store has it; another
/// writer's file of the same name means this one is fenced), then kept as the cached copy.
final class ObjectFileWriter: ImmutableFileWriter {
    let name: String
    let storage: ObjectStorage
    private var temp: ObjectFileCache.Temporary?

    init(name: String, storage: ObjectStorage, temp: ObjectFileCache.Temporary) {
        self.name = name
        self.storage = storage
        self.temp = temp
    }

    var bytesWritten: Int { temp?.size ?? 0 }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let temp else { throw TidepoolError.closed("\(storage.displayPath(name)) is already committed") }
        try temp.append(bytes)
    }

    func commit() throws {
        guard let temp else { throw TidepoolError.closed("\(storage.displayPath(name)) is already committed") }
        guard try storage.store.createIfAbsent(name, try temp.contents(), token: storage.nextToken()) else {
            throw TidepoolError.fenced("\(storage.displayPath(name)) was already written by another writer; this one stops")
        }
        self.temp = nil
        // The store has it; keeping a local copy is only a cache (a failure here loses nothing).
        try? storage.cache.adopt(storage.cached(name), temp)
    }

    func abort() {
        temp?.remove()
        temp = nil
    }
}

extension MappedFile {
    /// A "mapping" of bytes held in memory (a WAL object read for replay).
    static func owning(_ bytes: [UInt8], name: String) -> MappedFile {
        let memory = OwnedMemory(bytes)
        return MappedFile(name: name, bytes: memory.bytes) { _ in withExtendedLifetime(memory) {} }
    }
}

/// Bytes in a 64-byte aligned allocation, freed with the last reference.
/// `@unchecked Sendable`: written once in `init`, read-only after.
private final class OwnedMemory: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawBufferPointer

    init(_ source: [UInt8]) {
        let base = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, source.count), alignment: 64)
        source.withUnsafeBytes { base.copyMemory(from: $0) }
        self.base = base
        bytes = UnsafeRawBufferPointer(rebasing: base[0..<source.count])
    }

    deinit { base.deallocate() }
}
