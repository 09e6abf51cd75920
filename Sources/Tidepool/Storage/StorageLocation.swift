/// Where a database lives, as a user names it: the one place that turns a location into a
/// `StorageBackend` (today a local directory; object storage is the next kind).
enum StorageLocation: CustomStringConvertible, Sendable {
    case directory(String)

    /// Opens the storage, creating an empty directory where none exists.
    func open() throws -> any StorageBackend {
        switch self {
        case .directory(let path): return try LocalStorage(root: path)
        }
    }

    /// Whether a database (a manifest) is there; looking creates nothing.
    var hasDatabase: Bool {
        switch self {
        case .directory(let path): return LocalStorage.hasDatabase(root: path)
        }
    }

    var description: String {
        switch self {
        case .directory(let path): return path
        }
    }
}
