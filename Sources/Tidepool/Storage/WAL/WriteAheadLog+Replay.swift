import Foundation
import Logging

extension WriteAheadLog {
    /// The log files replay reads, in order, asked to be fetched ahead (`StorageBackend.prefetch`).
    /// A file the next one starts within afterSeq + 1 of holds only flushed operations: not read
    /// at all (on object storage the flushed objects stay for a grace period, and a query node
    /// opening the collection would otherwise fetch every one of them).
    static func fetchAhead(storage: any StorageBackend, folder: String, afterSeq: UInt64) throws -> [String] {
        let all = try storage.list(folder).filter { WALFormat.firstSeq(fromFileName: $0) != nil }
        let files = all.indices.filter { i in
            guard i + 1 < all.count, let next = WALFormat.firstSeq(fromFileName: all[i + 1]) else { return true }
            return afterSeq == .max || next > afterSeq + 1
        }.map { all[$0] }
        storage.prefetch(files.map { folder + "/" + $0 })
        return files
    }

    /// `fetchAhead` on a thread of its own, started while the collection opens its segments (on
    /// object storage the listing and the fetches are round trips the opening need not wait for).
    /// `@unchecked Sendable`: the result is written once, before `done` is signalled.
    final class EarlyLogFetch: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: Result<[String], any Error> = .success([])

        init(storage: any StorageBackend, folder: String, afterSeq: UInt64) {
            let thread = Thread { [self] in
                result = Result { try WriteAheadLog.fetchAhead(storage: storage, folder: folder, afterSeq: afterSeq) }
                done.signal()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }

        /// The files to replay, once fetched ahead (throws the listing's error).
        func files() throws -> [String] {
            done.wait()
            done.signal()  // later callers do not wait
            return try result.get()
        }
    }

    /// Replays every frame with a sequence number above `afterSeq`, in order, and returns the
    /// last sequence number seen (at least `afterSeq`).
    ///
    /// Sequence numbers must run on from `afterSeq` without a gap: a missing file or frame is
    /// damage, not an empty stretch. Only an incomplete final write may be cut: a bad frame in
    /// the last file with no valid frame after it (a torn tail, never acknowledged, since an
    /// operation is acknowledged only once its frame is written) is cut off with a warning, or,
    /// `readOnly`, left in place and ignored. A bad frame followed by valid ones, or one in an
    /// earlier file, is damage: an error naming the file and offset, and nothing is changed.
    static func replay(
        storage: any StorageBackend, folder: String, dimension: Int, afterSeq: UInt64, readOnly: Bool = false,
        logger: Logger, early: EarlyLogFetch? = nil, apply: (UInt64, WALOperation) throws -> Void
    ) throws -> UInt64 {
        let files = try early?.files() ?? fetchAhead(storage: storage, folder: folder, afterSeq: afterSeq)
        var lastSeq = afterSeq
        for (index, fileName) in files.enumerated() {
            let name = folder + "/" + fileName
            let isLast = index == files.count - 1
            let mapped = try storage.map(name)
            let bytes = mapped.bytes
            let path = storage.displayPath(name)
            let header: WALFileHeader
            do {
                header = try WALFileHeader.decode(bytes, file: path)
            } catch {
                // A file is created, then its header written: a crash in between leaves a last file
                // with no frame and a short or damaged header. Nothing was ever logged in it.
                guard isLast && bytes.count <= WALFileHeader.size else { throw error }
                logger.warning("WAL file \(path) has a torn header and no frames (\(bytes.count) bytes)\(readOnly ? "" : "; removing it")")
                if !readOnly { try storage.delete(name) }
                continue
            }
            guard header.dimension == dimension else {
                throw TidepoolError.corrupt(
                    file: path, offset: WALFileHeader.dimensionOffset,
                    reason: "WAL dimension \(header.dimension) differs from the collection's \(dimension)")
            }
            guard header.firstSeq == WALFormat.firstSeq(fromFileName: fileName) else {
                throw TidepoolError.corrupt(
                    file: path, offset: WALFileHeader.firstSeqOffset,
                    reason: "WAL header's first sequence number \(header.firstSeq) differs from the file name \(fileName)")
            }
            var r = ByteReader(bytes, file: path)
            r.position = WALFileHeader.size
            while r.remaining > 0 {
                let frameStart = r.position
                switch try readFrame(&r, dimension: dimension, decodeAbove: afterSeq, file: path) {
                case .frame(let seq, let op):
                    if seq <= afterSeq { continue }
                    guard seq == lastSeq + 1 else {
                        throw TidepoolError.corrupt(
                            file: path, offset: frameStart,
                            reason: seq <= lastSeq
                                ? "sequence number \(seq) does not follow \(lastSeq)"
                                : "sequence numbers \(lastSeq + 1)...\(seq - 1) are missing (a lost WAL file or frame)")
                    }
                    lastSeq = seq
                    if let op { try apply(seq, op) }
                case .bad(let reason):
                    guard isLast, !hasValidFrame(in: bytes, after: frameStart, above: lastSeq) else {
                        throw TidepoolError.corrupt(
                            file: path, offset: frameStart, reason: reason + (isLast ? ", and valid frames follow it" : ""))
                    }
                    let torn = bytes.count - frameStart
                    if readOnly {
                        logger.warning(
                            "WAL \(path): \(reason) at offset \(frameStart): an unfinished final write of \(torn) bytes, ignored")
                    } else {
                        logger.warning("WAL \(path): \(reason) at offset \(frameStart): cutting an unfinished final write of \(torn) bytes")
                        try storage.truncate(name, to: frameStart)
                    }
                    r.position = bytes.count
                }
            }
        }
        return lastSeq
    }

    /// The operations of one whole WAL file (a WAL object on object storage, which is written
    /// whole) with sequence numbers above `afterSeq`, in order. Any damage is an error: an
    /// object has no torn tail.
    static func operations(
        in bytes: UnsafeRawBufferPointer, file: String, expectedFirstSeq: UInt64, dimension: Int, afterSeq: UInt64
    ) throws -> [(seq: UInt64, op: WALOperation)] {
        let header = try WALFileHeader.decode(bytes, file: file)
        guard header.dimension == dimension else {
            throw TidepoolError.corrupt(
                file: file, offset: WALFileHeader.dimensionOffset,
                reason: "WAL dimension \(header.dimension) differs from the collection's \(dimension)")
        }
        guard header.firstSeq == expectedFirstSeq else {
            throw TidepoolError.corrupt(
                file: file, offset: WALFileHeader.firstSeqOffset,
                reason: "WAL header's first sequence number \(header.firstSeq) differs from its name's \(expectedFirstSeq)")
        }
        var r = ByteReader(bytes, file: file)
        r.position = WALFileHeader.size
        var out: [(seq: UInt64, op: WALOperation)] = []
        var last = expectedFirstSeq - 1
        while r.remaining > 0 {
            let frameStart = r.position
            switch try readFrame(&r, dimension: dimension, decodeAbove: afterSeq, file: file) {
            case .frame(let seq, let op):
                guard seq == last + 1 else {
                    throw TidepoolError.corrupt(file: file, offset: frameStart, reason: "sequence number \(seq) does not follow \(last)")
                }
                last = seq
                if let op { out.append((seq, op)) }
            case .bad(let reason):
                throw TidepoolError.corrupt(file: file, offset: frameStart, reason: reason + " in a WAL object (objects are written whole)")
            }
        }
        return out
    }

    private enum Frame {
        /// A whole frame; its operation decoded only when its sequence number is above the cutoff.
        case frame(UInt64, WALOperation?)
        case bad(String)
    }

    /// Reads the frame at `r`'s position, leaving `r` after it when it is whole.
    private static func readFrame(_ r: inout ByteReader, dimension: Int, decodeAbove afterSeq: UInt64, file: String) throws -> Frame {
        let frameStart = r.position
        guard r.remaining >= WALFormat.frameHeaderSize + WALFormat.frameBodyPrefix else { return .bad("torn frame header") }
        let len = Int(try r.u32())
        let crc = try r.u32()
        guard len >= WALFormat.frameBodyPrefix, len <= WALFormat.maxFrameBody, len <= r.remaining else {
            return .bad("frame length \(len) runs past the end of the file")
        }
        let body = try r.bytes(len, "frame body")
        guard crc32c(body) == crc else { return .bad("frame checksum mismatch") }
        var br = ByteReader(body, file: file, fileOffset: frameStart + WALFormat.frameHeaderSize)
        let seq = try br.u64()
        let type = try br.u8()
        // Frames already in segments are skipped without decoding.
        return .frame(seq, seq > afterSeq ? try WALFormat.decodePayload(type: type, &br, dimension: dimension) : nil)
    }

    /// Whether a whole frame with a sequence number after `lastSeq` starts anywhere past `offset`:
    /// then the bad frame at `offset` is not a torn tail but damage with acknowledged writes after it.
    static func hasValidFrame(in bytes: UnsafeRawBufferPointer, after offset: Int, above lastSeq: UInt64) -> Bool {
        let headerAndPrefix = WALFormat.frameHeaderSize + WALFormat.frameBodyPrefix
        var at = offset + 1
        while at + headerAndPrefix <= bytes.count {
            defer { at += 1 }
            let len = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            guard len >= WALFormat.frameBodyPrefix, at + WALFormat.frameHeaderSize + len <= bytes.count else { continue }
            let seq = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at + WALFormat.frameHeaderSize, as: UInt64.self))
            // A cheap filter first: a later frame continues the sequence (allow for lost frames).
            guard seq > lastSeq, seq - lastSeq <= 1 << 32 else { continue }
            let crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
            let body = UnsafeRawBufferPointer(rebasing: bytes[(at + WALFormat.frameHeaderSize)..<(at + WALFormat.frameHeaderSize + len)])
            if crc32c(body) == crc { return true }
        }
        return false
    }
}
