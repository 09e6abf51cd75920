import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on `DIR/LOCK`, released when the process dies.
final class DirectoryLock: StorageLock, @unchecked Sendable {
    private var fd: Int32

    init(directory: String) throws {
        let p = directory + "/LOCK"
        fd = open(p, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw TidepoolError.io(path: p, operation: "open lock file", errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            _ = sysClose(fd)
            fd = -1
            if e == EWOULDBLOCK { throw TidepoolError.locked(path: directory) }
            throw TidepoolError.io(path: p, operation: "flock", errno: e)
        }
    }

    func release() {
        if fd >= 0 { _ = flock(fd, LOCK_UN); _ = sysClose(fd); fd = -1 }
    }

    deinit { release() }
}
