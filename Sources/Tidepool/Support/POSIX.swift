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

/// Resident set size of this process in bytes (Linux `/proc/self/statm`), or 0.
public func currentResidentBytes() -> Int {
    #if os(Linux)
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, resident = 0
    guard withUnsafeMutablePointer(to: &size, { s in
        withUnsafeMutablePointer(to: &resident) { r in fscanf_two(f, s, r) }
    }) else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    #else
    return 0
    #endif
}

#if os(Linux)
private func fscanf_two(_ f: UnsafeMutablePointer<FILE>, _ a: UnsafeMutablePointer<Int>, _ b: UnsafeMutablePointer<Int>) -> Bool {
    var buf = [CChar](repeating: 0, count: 256)
    guard fgets(&buf, 256, f) != nil else { return false }
    let line = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
    guard parts.count >= 2, let x = Int(parts[0]), let y = Int(parts[1]) else { return false }
    a.pointee = x
    b.pointee = y
    return true
}

#endif

/// Returns freed heap memory to the OS so resident-size measurements mean something.
public func releaseFreeHeapMemory() { tp_release_free_heap() }
