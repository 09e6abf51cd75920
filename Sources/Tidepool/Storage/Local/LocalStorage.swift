import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The local-directory storage backend: POSIX files, `mmap` for reading,
/// write-to-temp + fsync + rename + fsync(directory) for every publication.
final class LocalStorage: StorageBackend, @unchecked Sendable {
    let root: String
    var location: String { root }
    static let manifestName = "MANIFEST"

    /// Opens `root`; `create` makes it (and its parents) when missing, otherwise a missing path,
    /// or one that is a file, a FIFO or a device, is an error naming it.
    init(root: String, create: Bool = true) throws {
        self.root = root
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue {
            throw TidepoolError.invalidArgument("'\(root)' is not a directory, so it cannot hold a database")
        }
        if !exists {
            guard create else { throw TidepoolError.invalidArgument("no database at '\(root)' (no such directory)") }
            try LocalStorage.makeDirectories(root)
        }
    }

    func path(_ name: String) -> String { root + "/" + name }
    func displayPath(_ name: String) -> String { path(name) }
    var manifestDisplayPath: String { path(LocalStorage.manifestName) }

    /// Whether `root` holds a database (a manifest).
    static func hasDatabase(root: String) -> Bool { FileManager.default.fileExists(atPath: root + "/" + manifestName) }

    func lockForWriting() throws -> StorageLock { try DirectoryLock(directory: root, exclusive: true) }
    func lockForReading() throws -> StorageLock { try DirectoryLock(directory: root, exclusive: false) }

    func removeManifestLeftovers() throws { try delete(LocalStorage.manifestName + ".tmp") }

    static func makeDirectories(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TidepoolError.io(path: path, operation: "create directory", errno: errno == 0 ? EIO : errno)
        }
    }

    static func fsyncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY)
        guard fd >= 0 else { throw TidepoolError.io(path: dir, operation: "open directory", errno: errno) }
        defer { _ = close(fd) }
        if fsync(fd) != 0 { throw TidepoolError.io(path: dir, operation: "fsync directory", errno: errno) }
    }

    static func parent(of path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return String(path[..<i])
    }

    func createImmutable(_ name: String) throws -> ImmutableFileWriter {
        let final = path(name)
        try LocalStorage.makeDirectories(LocalStorage.parent(of: final))
        return try LocalImmutableWriter(finalPath: final)
    }

    func map(_ name: String) throws -> MappedFile {
        let p = path(name)
        let fd = open(p, O_RDONLY)
        guard fd >= 0 else { throw TidepoolError.io(path: p, operation: "open", errno: errno) }
        defer { _ = close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TidepoolError.io(path: p, operation: "stat", errno: errno) }
        let size = Int(st.st_size)
        if size == 0 {
            return MappedFile(name: p, bytes: UnsafeRawBufferPointer(start: nil, count: 0), unmap: { _ in })
        }
        let addr = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
        guard let addr, addr != MAP_FAILED else { throw TidepoolError.io(path: p, operation: "mmap", errno: errno) }
        return MappedFile(
            name: p, bytes: UnsafeRawBufferPointer(start: addr, count: size),
            unmap: { b in
                _ = munmap(UnsafeMutableRawPointer(mutating: b.baseAddress), b.count)
            })
    }

    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8] {
        let p = path(name)
        let fd = open(p, O_RDONLY)
        guard fd >= 0 else { throw TidepoolError.io(path: p, operation: "open", errno: errno) }
        defer { _ = close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TidepoolError.io(path: p, operation: "read", errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return Array(out[0..<done])
    }

    func size(of name: String) throws -> Int {
        var st = stat()
        guard stat(path(name), &st) == 0 else { throw TidepoolError.io(path: path(name), operation: "stat", errno: errno) }
        return Int(st.st_size)
    }

    func list(_ folder: String) throws -> [String] {
        let p = path(folder)
        guard FileManager.default.fileExists(atPath: p) else { return [] }
        do {
            return try FileManager.default.contentsOfDirectory(atPath: p).sorted()
        } catch {
            throw TidepoolError.io(path: p, operation: "list directory", errno: EIO)
        }
    }

    func delete(_ name: String) throws {
        let p = path(name)
        if unlink(p) != 0 && errno != ENOENT { throw TidepoolError.io(path: p, operation: "unlink", errno: errno) }
    }

    func deleteFolder(_ folder: String) throws {
        let p = path(folder)
        guard FileManager.default.fileExists(atPath: p) else { return }
        do {
            try FileManager.default.removeItem(atPath: p)
        } catch {
            throw TidepoolError.io(path: p, operation: "remove folder", errno: errno == 0 ? EIO : errno)
        }
    }

    /// Written beside the old one and renamed over it (`LocalImmutableWriter`): readers see one or the other.
    func swapManifest(_ bytes: [UInt8]) throws { try writeWhole(LocalStorage.manifestName, bytes) }

    func readManifest() throws -> [UInt8]? {
        let p = path(LocalStorage.manifestName)
        guard FileManager.default.fileExists(atPath: p) else { return nil }
        return try read(LocalStorage.manifestName, offset: 0, count: try size(of: LocalStorage.manifestName))
    }

    func openAppendLog(_ name: String) throws -> AppendLog {
        let p = path(name)
        try LocalStorage.makeDirectories(LocalStorage.parent(of: p))
        return try LocalAppendLog(path: p, name: name)
    }

    /// A hard link: the branch shares the file's blocks, nothing is copied. Falls back to a copy
    /// where the file system has no hard links.
    func share(_ source: String, as target: String) throws -> Int {
        let to = path(target)
        try LocalStorage.makeDirectories(LocalStorage.parent(of: to))
        if link(path(source), to) == 0 { return 0 }
        let e = errno
        if e == EEXIST {
            // Left by an interrupted branch of the same name: the manifest never named it.
            try delete(target)
            if link(path(source), to) == 0 { return 0 }
        }
        guard e == EXDEV || e == EPERM || e == ENOTSUP || e == EMLINK else {
            throw TidepoolError.io(path: to, operation: "link to \(path(source))", errno: e)
        }
        return try copyFile(source, to: target)
    }

    func syncFolder(_ folder: String) throws { try LocalStorage.fsyncDirectory(path(folder)) }

    /// Truncates a file (used to cut a torn WAL tail).
    func truncate(_ name: String, to length: Int) throws {
        let p = path(name)
        if sysTruncate(p, length) != 0 { throw TidepoolError.io(path: p, operation: "truncate", errno: errno) }
    }
}
