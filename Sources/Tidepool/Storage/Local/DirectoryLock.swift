import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `flock` on the database directory itself, exclusive for a writer, shared for read-only
/// opens, released when the process dies. Locking the directory (not only a file in it) means
/// that deleting a file cannot let a second writer in. A writer also locks `DIR/LOCK`, the lock
/// earlier versions took, so an older process and a newer one never both write.
final class DirectoryLock: StorageLock, @unchecked Sendable {
    private var fds: [Int32] = []

    init(directory: String, exclusive: Bool) throws {
        let mode = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB
        do {
            try take(directory, flags: O_RDONLY | O_DIRECTORY, mode: mode, what: "directory", directory: directory)
            if exclusive {
                try take(directory + "/LOCK", flags: O_RDWR | O_CREAT, mode: mode, what: "lock file", directory: directory)
            }
        } catch {
            release()
            throw error
        }
    }

    private func take(_ path: String, flags: Int32, mode: Int32, what: String, directory: String) throws {
        let fd = open(path, flags | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TidepoolError.io(path: path, operation: "open \(what) to lock it", errno: errno) }
        fds.append(fd)
        if flock(fd, mode) != 0 {
            let e = errno
            if e == EWOULDBLOCK { throw TidepoolError.locked(path: directory) }
            throw TidepoolError.io(path: path, operation: "flock", errno: e)
        }
    }

    func release() {
        for fd in fds {
            _ = flock(fd, LOCK_UN)
            _ = sysClose(fd)
        }
        fds = []
    }

    deinit { release() }
}
