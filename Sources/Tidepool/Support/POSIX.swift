import TidepoolKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Module-qualified aliases, because several types here have methods named `write` or `close`.
@inline(__always) func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
@inline(__always) func sysClose(_ fd: Int32) -> Int32 { close(fd) }
@inline(__always) func sysTruncate(_ path: String, _ length: Int) -> Int32 { truncate(path, off_t(length)) }
