import Foundation
import XCTest

@testable import Tidepool

/// Where a test's database lives, opened and reopened through the storage seam: a local
/// directory (what `Database(path:)` opens), or the test-only in-memory store.
final class TestStore {
    enum Kind: String, CaseIterable {
        case local
        case memory
    }

    let kind: Kind
    let dir: TempDir
    private let memory = MemoryStorage()

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
            }
        }
    }

    /// Opens (recovering) the database.
    func open(_ options: DatabaseOptions = DatabaseOptions()) throws -> Database {
        switch kind {
        case .local: return try Database(path: dir.path, options: options)
        case .memory: return try Database(storage: memory, path: memory.location, options: options)
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
