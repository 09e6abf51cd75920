import Foundation
import Logging
import XCTest

@testable import Tidepool

/// `ArrivingFile`: a mapping whose bytes arrive by block, on demand or in the background.
final class ArrivingFileTests: XCTestCase {
    /// A source over known bytes, counting the ranges it served, failing the next `failures`.
    final class Source: @unchecked Sendable {
        let bytes: [UInt8]
        let memory: UnsafeMutableRawBufferPointer
        private let lock = NSLock()
        private(set) var served: [Range<Int>] = []
        var failures = 0
        private(set) var completions = 0

        init(size: Int) {
            var rng = SplitMix64(seed: 5)
            bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            memory = .allocate(byteCount: size, alignment: 64)
            memory.initializeMemory(as: UInt8.self, repeating: 0)
        }
        deinit { memory.deallocate() }

        func file() -> ArrivingFile {
            let mapped = MappedFile(name: "test.tps", bytes: UnsafeRawBufferPointer(memory)) { _ in }
            return ArrivingFile(
                arriving: mapped,
                source: ArrivingFile.Source(
                    fetch: { range in
                        try self.lock.withLock {
                            if self.failures > 0 {
                                self.failures -= 1
                                throw TidepoolError.storage("GET test.tps failed (injected)")
                            }
                            self.served.append(range)
                        }
                        return Array(self.bytes[range])
                    },
                    store: { bytes, offset in
                        self.lock.withLock {
                            bytes.withUnsafeBytes {
                                self.memory.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
                            }
                        }
                    },
                    completed: { self.lock.withLock { self.completions += 1 } }))
        }

        func view(_ range: Range<Int>) -> [UInt8] { Array(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(memory)[range])) }
        var servedBytes: Int { lock.withLock { served.reduce(0) { $0 + $1.count } } }
    }

    func testEnsureFetchesOnlyTheBlocksAskedForAndEachOnce() throws {
        let block = ArrivingFile.blockSize
        let source = Source(size: 10 * block + 100)
        let file = source.file()
        try file.ensure([10..<20, 30..<40])
        XCTAssertEqual(source.served, [0..<block], "two ranges in one block: one request")
        XCTAssertEqual(source.view(10..<40), Array(source.bytes[10..<40]))
        try file.ensure([5..<block + 1])
        XCTAssertEqual(source.served.last, block..<2 * block, "only the block not here yet")
        try file.ensure([3 * block..<6 * block])
        XCTAssertEqual(source.served.last, 3 * block..<6 * block, "contiguous blocks in one request")
        XCTAssertFalse(file.isComplete)
        try file.ensure([9 * block + 50..<10 * block + 100])
        XCTAssertEqual(source.served.last, 9 * block..<10 * block + 100, "the last block is short")
        XCTAssertEqual(source.completions, 0)
        try file.waitUntilComplete()
        XCTAssertTrue(file.isComplete)
        XCTAssertEqual(source.completions, 0, "handed over only once its reader has checked it")
        file.complete()
        file.complete()
        XCTAssertEqual(source.completions, 1)
        XCTAssertEqual(source.servedBytes, source.bytes.count, "no block fetched twice")
        XCTAssertEqual(source.view(0..<source.bytes.count), source.bytes)
    }

    func testConcurrentReadersOfOneBlockShareOneFetch() throws {
        let source = Source(size: 64 * ArrivingFile.blockSize)
        let file = source.file()
        let errors = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do { try file.ensure([i * 100..<(i * 100 + 2000)]) } catch { errors.withLock { $0 += 1 } }
        }
        XCTAssertEqual(errors.withLock { $0 }, 0)
        XCTAssertEqual(source.served, [0..<ArrivingFile.blockSize])
    }

    func testAFailedFetchMarksNothingAndIsFetchedAgain() throws {
        let source = Source(size: 4 * ArrivingFile.blockSize)
        let file = source.file()
        source.failures = 1
        XCTAssertThrowsError(try file.ensure([0..<10])) { XCTAssertTrue("\($0)".contains("injected"), "\($0)") }
        try file.ensure([0..<10])
        XCTAssertEqual(source.view(0..<10), Array(source.bytes[0..<10]))
    }

    func testTheBackgroundFillCompletesThenChecksAndDamageIsThrownAfter() throws {
        let source = Source(size: 300 * ArrivingFile.blockSize + 7)
        let file = source.file()
        try file.ensure([0..<100])
        source.failures = 1  // the first round fails and is retried
        file.fillInBackground(logger: Logger(label: "test")) {
            throw TidepoolError.corrupt(file: "test.tps", offset: 123, reason: "checksum mismatch (injected)")
        }
        XCTAssertThrowsError(try file.waitUntilComplete()) { XCTAssertTrue("\($0)".contains("offset 123"), "\($0)") }
        XCTAssertEqual(source.completions, 0, "a damaged copy is never completed (cached)")
        XCTAssertEqual(source.view(0..<source.bytes.count), source.bytes)
        XCTAssertFalse(file.isComplete)
        XCTAssertThrowsError(try file.ensure([0..<10]), "damage is reported to every later reader")
    }
}
