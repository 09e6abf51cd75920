import Foundation
import XCTest

@testable import Tidepool

/// Where a test's database lives, opened and reopened through the storage seam: a local
/// directory (what `Database(path:)` opens), the test-only in-memory store, or object storage
/// (an in-memory object store, with a cache directory that each reopen starts afresh).
final class TestStore {
    enum Kind: String, CaseIterable {
        case local
        case memory
        case object
    }

    let kind: Kind
    let dir: TempDir
    private let memory = MemoryStorage()
    private let objects = MemoryObjectStore()
    private var caches: [TempDir] = []

    init(_ kind: Kind, _ name: String = #function) {
        self.kind = kind
        dir = TempDir(name)
    }

    /// The storage the database sees.
    var storage: any StorageBackend {
        get throws {
            switch kind {
            case .local: return try StorageLocation.directory(dir.path).open()
            case .memory: return memory
            case .object: return try objectStorage()
            }
        }
    }

    /// A node over the shared object store with an empty cache: what a fresh process sees.
    private func objectStorage() throws -> ObjectStorage {
        let cache = TempDir("object-cache")
        caches.append(cache)
        return ObjectStorage(store: objects, cache: try ObjectFileCache(root: cache.path, capacity: 1 << 30, location: objects.location))
    }

    /// Opens (recovering) the database.
    func open(_ options: DatabaseOptions = DatabaseOptions()) throws -> Database {
        switch kind {
        case .local: return try Database(path: dir.path, options: options)
        case .memory: return try Database(storage: memory, path: memory.location, options: options)
        case .object: return try Database(storage: try objectStorage(), path: objects.location, options: options)
        }
    }

    /// `Database.verify` of the store: the problems found, none when sound.
    func verify() throws -> [String] { Database.verify(storage: try storage, path: dir.path) }

    /// The names of the files under `folder` (a collection's `segments` or `wal`, say).
    func files(_ folder: String) throws -> [String] { try storage.list(folder) }
}

/// Runs `body` once per storage kind, naming the kind in any failure.
func forEachStorage(
    _ name: String = #function, file: StaticString = #filePath, line: UInt = #line,
    _ body: (TestStore) throws -> Void
) throws {
    for kind in TestStore.Kind.allCases {
        let store = TestStore(kind, name)
        do {
            try body(store)
        } catch {
            XCTFail("\(kind.rawValue) storage: \(error)", file: file, line: line)
        }
    }
}
