import Foundation
import TidepoolKernels
import XCTest

/// The platform helpers the cold tier relies on.
final class PlatformTests: XCTestCase {
    /// Advice for many ranges of a file mapping: one call where the kernel has process_madvise,
    /// one per range otherwise; either way the mapping reads the same bytes afterwards.
    func testWillNeedAdviceForManyRangesLeavesTheMappingIntact() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = NSTemporaryDirectory() + "tidepool-advise-\(getpid())"
        defer { unlink(path) }
        let bytes = (0..<(64 * page)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let base = try XCTUnwrap(mmap(nil, bytes.count, PROT_READ, MAP_SHARED, fd, 0))
        XCTAssertNotEqual(Int(bitPattern: base), -1, "mmap failed")
        defer { munmap(base, bytes.count) }
        let pages = [0, 3, 7, 8, 40, 63]
        let starts = pages.map { UnsafeRawPointer(base + $0 * page) }
        let lengths = [Int](repeating: page, count: pages.count)
        let calls = starts.withUnsafeBufferPointer { s in
            lengths.withUnsafeBufferPointer { l in tp_advise_willneed(s.baseAddress!, l.baseAddress!, s.count) }
        }
        XCTAssertGreaterThanOrEqual(calls, 1)
        XCTAssertLessThanOrEqual(Int(calls), pages.count)
        let mapped = UnsafeRawBufferPointer(start: base, count: bytes.count)
        XCTAssertTrue(mapped.elementsEqual(bytes))
        // None at all is no call.
        XCTAssertEqual(tp_advise_willneed(starts, lengths, 0), 0)
    }
}
