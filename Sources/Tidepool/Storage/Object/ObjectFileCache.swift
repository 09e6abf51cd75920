import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The local copies of immutable objects (segments), bounded by a byte budget: a file is
/// downloaded once, mapped from disk (so the page cache is the memory tier), and evicted least
/// recently used first — never while a mapping of it is alive.
///
/// Layout: `ROOT/files/<name>` for copies, `ROOT/tmp/` for downloads and uploads in progress
/// (emptied on start), `ROOT/LOCATION` naming the location it caches. Copies are immutable and checksummed by the segment format, so a copy
/// found on start is used as it is.
final class ObjectFileCache: @unchecked Sendable {
    let root: String
    let capacity: Int
    private let files: LocalStorage
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    /// Copies still arriving, by name, so two readers of one file share one copy.
    private var arriving: [String: WeakArriving] = [:]
    private var clock: UInt64 = 0
    private(set) var stats = Stats()

    private struct Entry {
        var size: Int
        var lastUse: UInt64
        var mappings: Int
    }

    /// Cache counters, for `/metrics` and tests.
    struct Stats: Equatable {
        var hits = 0
        var misses = 0
        var evictions = 0
        var bytes = 0
    }

    /// Opens the cache at `root` for the objects of `location`; a cache that holds another
    /// location's copies is refused (its files would be taken for this one's).
    init(root: String, capacity: Int, location: String) throws {
        self.root = root
        self.capacity = capacity
        try LocalStorage.makeDirectories(root + "/files")
        let marker = root + "/LOCATION"
        if let owner = try? String(contentsOfFile: marker, encoding: .utf8) {
            guard owner == location else {
                throw TidepoolError.invalidArgument(
                    "cache directory '\(root)' holds copies of \(owner), not \(location); give each location its own")
            }
        } else {
            do { try location.write(toFile: marker, atomically: true, encoding: .utf8) } catch {
                throw TidepoolError.io(path: marker, operation: "write", errno: EIO)
            }
        }
        try? FileManager.default.removeItem(atPath: root + "/tmp")
        try LocalStorage.makeDirectories(root + "/tmp")
        files = try LocalStorage(root: root + "/files")
        // Copies left by an earlier run count against the budget (least recent first).
        if let walker = FileManager.default.enumerator(atPath: root + "/files") {
            while let rel = walker.nextObject() as? String {
                if let size = try? files.size(of: rel), !rel.hasSuffix(".tmp") {
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: files.path(rel), isDirectory: &isDir), !isDir.boolValue {
                        entries[rel] = Entry(size: size, lastUse: 0, mappings: 0)
                        stats.bytes += size
                    }
                }
            }
        }
    }

    var snapshot: Stats { lock.withLock { stats } }

    /// A file being written in `tmp/`.
    /// `@unchecked Sendable`: a download writes ranges from several threads, under its own lock.
    final class Temporary: @unchecked Sendable {
        let path: String
        private(set) var fd: Int32
        private(set) var size = 0

        init(path: String) throws {
            self.path = path
            fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw TidepoolError.io(path: path, operation: "create", errno: errno) }
        }

        func append(_ bytes: UnsafeRawBufferPointer) throws {
            try write(bytes, at: size)
        }

        func write(_ bytes: [UInt8], at offset: Int) throws { try bytes.withUnsafeBytes { try write($0, at: offset) } }

        func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TidepoolError.io(path: path, operation: "write", errno: errno)
                }
                done += n
            }
            size = max(size, offset + bytes.count)
        }

        /// The whole file's bytes.
        func contents() throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: size)
            var done = 0
            while done < size {
                let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw TidepoolError.io(path: path, operation: "read", errno: n < 0 ? errno : EIO) }
                done += n
            }
            return out
        }

        func close() {
            if fd >= 0 { _ = sysClose(fd); fd = -1 }
        }

        func remove() {
            close()
            _ = unlink(path)
        }

        deinit { remove() }
    }

    func createTemporary() throws -> Temporary {
        try Temporary(path: root + "/tmp/" + String(UInt64.random(in: 1...UInt64.max), radix: 16))
    }

    /// Moves a finished temporary file into the cache as `name`.
    func adopt(_ name: String, _ temp: Temporary) throws {
        temp.close()
        let final = files.path(name)
        try LocalStorage.makeDirectories(LocalStorage.parent(of: final))
        guard rename(temp.path, final) == 0 else { throw TidepoolError.io(path: final, operation: "rename", errno: errno) }
        lock.withLock {
            if let old = entries[name] { stats.bytes -= old.size }
            clock += 1
            entries[name] = Entry(size: temp.size, lastUse: clock, mappings: 0)
            stats.bytes += temp.size
        }
        evict()
    }

    /// Downloads `name` through `body` into a temporary file and adopts it (a miss).
    func fill(_ name: String, _ body: (Temporary) throws -> Void) throws {
        lock.withLock { stats.misses += 1 }
        let temp = try createTemporary()
        try body(temp)
        try adopt(name, temp)
    }

    /// Maps the cached copy of `name`, or nil when there is none. The copy is not evicted while
    /// the mapping lives.
    func map(_ name: String) throws -> MappedFile? {
        let present: Bool = lock.withLock {
            guard entries[name] != nil else { return false }
            clock += 1
            entries[name]?.lastUse = clock
            entries[name]?.mappings += 1
            stats.hits += 1
            return true
        }
        guard present else { return nil }
        let inner: MappedFile
        do { inner = try files.map(name) } catch {
            lock.withLock { entries[name]?.mappings -= 1 }
            throw error
        }
        return MappedFile(name: inner.name, bytes: inner.bytes) { [inner] _ in
            withExtendedLifetime(inner) {}
            self.unmapped(name)
        }
    }

    /// Maps a copy of `name` (`size` bytes) whose bytes arrive as they are needed (`ArrivingFile`),
    /// fetched by `fetch`: the cached copy when there is one (complete), the copy already arriving
    /// for another reader, or a new one. A new copy is a sparse file in `tmp/`, counted against the
    /// budget at once and never evicted while it arrives; once complete it moves into the cache.
    func mapArriving(
        _ name: String, size: Int, fetch: @escaping @Sendable (Range<Int>) throws -> [UInt8]
    ) throws -> ArrivingFile {
        if let cached = try map(name) { return ArrivingFile(complete: cached) }
        if let existing = lock.withLock({ arriving[name]?.file }) { return existing }
        guard size > 0 else { throw TidepoolError.corrupt(file: files.path(name), offset: 0, reason: "an empty segment file") }
        lock.withLock { stats.misses += 1 }
        let temp = try createTemporary()
        guard ftruncate(temp.fd, off_t(size)) == 0 else { throw TidepoolError.io(path: temp.path, operation: "ftruncate", errno: errno) }
        let addr = mmap(nil, size, PROT_READ, MAP_SHARED, temp.fd, 0)
        guard let addr, addr != MAP_FAILED else { throw TidepoolError.io(path: temp.path, operation: "mmap", errno: errno) }
        let copy = ArrivingCopy(temp: temp)
        lock.withLock { stats.bytes += size }
        evict()
        let mapping = MappedFile(name: files.path(name), bytes: UnsafeRawBufferPointer(start: addr, count: size)) { b in
            _ = munmap(UnsafeMutableRawPointer(mutating: b.baseAddress), b.count)
            self.released(name, copy, size: size)
        }
        let file = ArrivingFile(
            arriving: mapping,
            source: ArrivingFile.Source(
                fetch: fetch, store: { bytes, offset in try copy.write(bytes, at: offset) },
                completed: { self.arrived(name, copy, size: size) }))
        lock.withLock { arriving[name] = WeakArriving(file: file) }
        return file
    }

    /// A copy being filled by range: its temporary file, written under a lock, and whether it
    /// has moved into the cache. A block may arrive twice (see `ArrivingFile`): a write after
    /// the file was closed, its bytes all here already, is dropped.
    private final class ArrivingCopy: @unchecked Sendable {
        let temp: Temporary
        private let lock = NSLock()
        private var closed = false
        var adopted = false
        init(temp: Temporary) { self.temp = temp }
        func write(_ bytes: [UInt8], at offset: Int) throws {
            try lock.withLock {
                guard !closed else { return }
                try temp.write(bytes, at: offset)
            }
        }
        func close() {
            lock.withLock {
                closed = true
                temp.close()
            }
        }
    }

    private struct WeakArriving {
        weak var file: ArrivingFile?
    }

    /// Every block of `copy` is here: it becomes the cached copy of `name` (mapped once, by its reader).
    private func arrived(_ name: String, _ copy: ArrivingCopy, size: Int) {
        let final = files.path(name)
        copy.close()
        do {
            try LocalStorage.makeDirectories(LocalStorage.parent(of: final))
            guard rename(copy.temp.path, final) == 0 else { throw TidepoolError.io(path: final, operation: "rename", errno: errno) }
        } catch {
            return  // stays a temporary copy, removed when unmapped
        }
        lock.withLock {
            copy.adopted = true
            arriving.removeValue(forKey: name)
            if let old = entries[name] { stats.bytes -= old.size }
            clock += 1
            entries[name] = Entry(size: size, lastUse: clock, mappings: 1)
        }
    }

    /// The mapping of an arriving copy is gone: an adopted copy is an ordinary cached file now,
    /// an incomplete one is deleted.
    private func released(_ name: String, _ copy: ArrivingCopy, size: Int) {
        let adopted: Bool = lock.withLock {
            if !copy.adopted {
                stats.bytes -= size
                if arriving[name]?.file == nil { arriving.removeValue(forKey: name) }
            }
            return copy.adopted
        }
        if adopted { unmapped(name) } else { copy.temp.remove() }
    }

    private func unmapped(_ name: String) {
        lock.withLock { entries[name]?.mappings -= 1 }
        evict()
    }

    /// Bytes of the cached copy, or nil when there is none.
    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8]? {
        guard lock.withLock({ entries[name] != nil }) else { return nil }
        return try files.read(name, offset: offset, count: count)
    }

    func size(_ name: String) -> Int? { lock.withLock { entries[name]?.size } }

    func remove(_ name: String) {
        lock.withLock {
            if let e = entries.removeValue(forKey: name) { stats.bytes -= e.size }
        }
        try? files.delete(name)
    }

    func removeFolder(_ folder: String) {
        lock.withLock {
            for (k, e) in entries where k.hasPrefix(folder + "/") {
                entries.removeValue(forKey: k)
                stats.bytes -= e.size
            }
        }
        try? files.deleteFolder(folder)
    }

    /// Drops unmapped copies, least recently used first, until the cache fits its budget.
    private func evict() {
        let victims: [String] = lock.withLock {
            var out: [String] = []
            guard stats.bytes > capacity else { return out }
            for (name, e) in entries.filter({ $0.value.mappings == 0 }).sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
                guard stats.bytes > capacity else { break }
                entries.removeValue(forKey: name)
                stats.bytes -= e.size
                stats.evictions += 1
                out.append(name)
            }
            return out
        }
        for v in victims { try? files.delete(v) }
    }
}
