import Foundation
import Logging

extension WriteAheadLog {
    /// Replays every frame with a sequence number above `afterSeq`, in order.
    /// A torn or corrupt frame at the tail of the last file is cut off with a warning;
    /// damage anywhere else is an error naming the file and offset.
    /// Returns the last sequence number seen (at least `afterSeq`).
    static func replay(
        storage: any StorageBackend, folder: String, dimension: Int, afterSeq: UInt64, logger: Logger,
        apply: (UInt64, WALOperation) throws -> Void
    ) throws -> UInt64 {
        let files = try storage.list(folder).filter { WALFormat.firstSeq(fromFileName: $0) != nil }
        var lastSeq = afterSeq
        for (index, fileName) in files.enumerated() {
            let name = folder + "/" + fileName
            let isLast = index == files.count - 1
            let mapped = try storage.map(name)
            let bytes = mapped.bytes
            let path = storage.displayPath(name)
            if bytes.count < WALFileHeader.size && isLast {
                logger.warning("WAL file \(path) has a torn header (\(bytes.count) bytes); removing it")
                try storage.delete(name)
                continue
            }
            let header = try WALFileHeader.decode(bytes, file: path)
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
                var bad: String?
                var op: WALOperation?
                var seq: UInt64 = 0
                if r.remaining < WALFormat.frameHeaderSize + WALFormat.frameBodyPrefix {
                    bad = "torn frame header"
                } else {
                    let len = Int(try r.u32())
                    let crc = try r.u32()
                    if len < WALFormat.frameBodyPrefix || len > WALFormat.maxFrameBody || len > r.remaining {
                        bad = "frame length \(len) runs past the end of the file"
                    } else {
                        let body = try r.bytes(len, "frame body")
                        if crc32c(body) != crc {
                            bad = "frame checksum mismatch"
                        } else {
                            var br = ByteReader(body, file: path, fileOffset: frameStart + WALFormat.frameHeaderSize)
                            seq = try br.u64()
                            let type = try br.u8()
                            // Frames already in segments are skipped without decoding.
                            if seq > afterSeq { op = try WALFormat.decodePayload(type: type, &br, dimension: dimension) }
                        }
                    }
                }
                if let bad {
                    if isLast {
                        logger.warning(
                            "WAL \(path): \(bad) at offset \(frameStart); truncating the tail (\(bytes.count - frameStart) bytes)")
                        try storage.truncate(name, to: frameStart)
                        break
                    }
                    throw TidepoolError.corrupt(file: path, offset: frameStart, reason: bad)
                }
                if seq <= afterSeq { continue }
                if seq <= lastSeq {
                    throw TidepoolError.corrupt(
                        file: path, offset: frameStart,
                        reason: "sequence number \(seq) does not follow \(lastSeq)")
                }
                lastSeq = seq
                if let op { try apply(seq, op) }
            }
        }
        return lastSeq
    }
}
