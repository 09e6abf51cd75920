/// Where a database lives, as a user names it: the one place that turns a location into a
/// `StorageBackend` (today a local directory; object storage is the next kind).
enum StorageLocation: CustomStringConvertible, Sendable {
    case directory(String)

    /// Opens the storage; `create` makes an empty directory where none exists, otherwise a
    /// location that is not a directory is an error.
    func open(create: Bool = true) throws -> any StorageBackend {
        switch self {
        case .directory(let path): return try LocalStorage(root: path, create: create)
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
