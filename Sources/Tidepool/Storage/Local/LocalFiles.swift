import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `final.tmp`, then fsync, rename over `final`, fsync the directory.
final class LocalImmutableWriter: ImmutableFileWriter {
    let finalPath: String
    let tempPath: String
    private var fd: Int32
    private(set) var bytesWritten = 0

    init(finalPath: String) throws {
        self.finalPath = finalPath
        self.tempPath = finalPath + ".tmp"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TidepoolError.io(path: tempPath, operation: "create", errno: errno) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(fd: fd, bytes, path: tempPath)
        bytesWritten += bytes.count
    }

    func commit() throws {
        guard fd >= 0 else { throw TidepoolError.closed("file \(finalPath) already committed") }
        if fsync(fd) != 0 { throw TidepoolError.io(path: tempPath, operation: "fsync", errno: errno) }
        _ = close(fd)
        fd = -1
        if rename(tempPath, finalPath) != 0 { throw TidepoolError.io(path: finalPath, operation: "rename", errno: errno) }
        try LocalStorage.fsyncDirectory(LocalStorage.parent(of: finalPath))
    }

    func abort() {
        if fd >= 0 { _ = close(fd); fd = -1 }
        _ = unlink(tempPath)
    }

    deinit { if fd >= 0 { _ = close(fd); _ = unlink(tempPath) } }
}

func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = sysWrite(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw TidepoolError.io(path: path, operation: "write", errno: errno)
        }
        done += n
    }
}

final class LocalAppendLog: AppendLog, @unchecked Sendable {
    let name: String
    let path: String
    private var fd: Int32
    private(set) var size: Int

    init(path: String, name: String) throws {
        self.path = path
        self.name = name
        let existed = FileManager.default.fileExists(atPath: path)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw TidepoolError.io(path: path, operation: "open for append", errno: errno) }
        var st = stat()
        _ = fstat(fd, &st)
        size = Int(st.st_size)
        if !existed { try LocalStorage.fsyncDirectory(LocalStorage.parent(of: path)) }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(fd: fd, bytes, path: path)
        size += bytes.count
    }

    func sync() throws {
        #if os(Linux)
        if fdatasync(fd) != 0 { throw TidepoolError.io(path: path, operation: "fdatasync", errno: errno) }
        #else
        if fsync(fd) != 0 { throw TidepoolError.io(path: path, operation: "fsync", errno: errno) }
        #endif
    }

    func truncate(to length: Int) throws {
        if ftruncate(fd, off_t(length)) != 0 { throw TidepoolError.io(path: path, operation: "truncate", errno: errno) }
        size = length
    }

    func close() {
        if fd >= 0 { _ = sysClose(fd); fd = -1 }
    }

    deinit { close() }
}
