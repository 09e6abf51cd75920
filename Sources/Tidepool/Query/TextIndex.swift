/// A segment's inverted index for BM25, stored as the segment's text section:
///
///     header (32 bytes): magic "TPTEXT01", u64 rows, u64 total tokens, u32 term count, u32 reserved
///     doc lengths:   u32 per row, padded to 8 bytes
///     term offsets:  u32[terms + 1] into the term bytes, padded to 8
///     posting offsets: u64[terms + 1] into the postings, in entries
///     term bytes:    the terms' UTF-8, sorted by bytes, padded to 8
///     postings:      per term, (u32 row, u32 term frequency) ascending by row
enum TextIndexFormat {
    static let magic: [UInt8] = Array("TPTEXT01".utf8)

    /// Builds the section from each row's terms.
    static func build(rows: Int, terms: (Int) -> [String]) -> [UInt8] {
        var lengths = [UInt32](repeating: 0, count: rows)
        var postings: [String: [(UInt32, UInt32)]] = [:]
        var total: UInt64 = 0
        for r in 0..<rows {
            let ts = terms(r)
            lengths[r] = UInt32(ts.count)
            total += UInt64(ts.count)
            var tf: [String: UInt32] = [:]
            for t in ts { tf[t, default: 0] += 1 }
            for (t, f) in tf { postings[t, default: []].append((UInt32(r), f)) }
        }
        let sorted = postings.keys.sorted(by: utf8Less)
        var w = ByteWriter(capacity: 32 + rows * 4 + sorted.count * 16)
        w.raw(magic)
        w.u64(UInt64(rows))
        w.u64(total)
        w.u32(UInt32(sorted.count))
        w.u32(0)
        for l in lengths { w.u32(l) }
        w.pad(toMultipleOf: 8)
        var termOffset: UInt32 = 0
        w.u32(0)
        for t in sorted { termOffset += UInt32(t.utf8.count); w.u32(termOffset) }
        w.pad(toMultipleOf: 8)
        var postingOffset: UInt64 = 0
        w.u64(0)
        for t in sorted { postingOffset += UInt64(postings[t]!.count); w.u64(postingOffset) }
        for t in sorted { w.raw(Array(t.utf8)) }
        w.pad(toMultipleOf: 8)
        for t in sorted { for (r, f) in postings[t]!.sorted(by: { $0.0 < $1.0 }) { w.u32(r); w.u32(f) } }
        return w.bytes
    }
}

/// A read-only view of a text section, validated on open, searched in place.
struct TextIndexView: @unchecked Sendable {
    let rows: Int
    let totalTokens: UInt64
    let termCount: Int
    let lengths: UnsafePointer<UInt32>
    let termOffsets: UnsafePointer<UInt32>
    let postingOffsets: UnsafeRawPointer  // u64, possibly unaligned-safe loads
    let termBytes: UnsafePointer<UInt8>
    let postings: UnsafePointer<UInt32>  // pairs

    init(bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int, expectedRows: Int) throws {
        var r = ByteReader(bytes, file: file, fileOffset: fileOffset)
        guard Array(try r.bytes(8, "text magic")) == TextIndexFormat.magic else { throw r.fail("bad text index magic") }
        rows = try r.size("text rows")
        totalTokens = try r.u64()
        termCount = Int(try r.u32())
        _ = try r.u32()
        guard rows == expectedRows else { throw r.fail("text index has \(rows) rows, segment has \(expectedRows)") }
        let base = bytes.baseAddress!
        var at = 32
        let lengthsAt = at
        at = (at + rows * 4 + 7) & ~7
        let termOffsetsAt = at
        at = (at + (termCount + 1) * 4 + 7) & ~7
        let postingOffsetsAt = at
        at += (termCount + 1) * 8
        guard at <= bytes.count else { throw r.fail("text index tables run past the section") }
        lengths = (base + lengthsAt).assumingMemoryBound(to: UInt32.self)
        termOffsets = (base + termOffsetsAt).assumingMemoryBound(to: UInt32.self)
        postingOffsets = UnsafeRawPointer(base + postingOffsetsAt)
        let termBytesAt = at
        let termBytesLen = Int(termOffsets[termCount])
        at = (at + termBytesLen + 7) & ~7
        let postingsLen = Int(postingOffsets.loadUnaligned(fromByteOffset: termCount * 8, as: UInt64.self))
        guard at + postingsLen * 8 <= bytes.count else { throw r.fail("text postings run past the section") }
        termBytes = (base + termBytesAt).assumingMemoryBound(to: UInt8.self)
        postings = (base + at).assumingMemoryBound(to: UInt32.self)
        // Offsets ascend and every posting names a row of this segment.
        for t in 0..<termCount {
            if termOffsets[t] > termOffsets[t + 1] || postingOffset(t) > postingOffset(t + 1) {
                throw TidepoolError.corrupt(
                    file: file, offset: fileOffset + termOffsetsAt + 4 * t, reason: "text index offsets out of order")
            }
        }
        for i in 0..<postingsLen where Int(postings[2 * i]) >= rows {
            throw TidepoolError.corrupt(
                file: file, offset: fileOffset + at + 8 * i, reason: "text posting names row \(postings[2 * i]) of \(rows)")
        }
    }

    @inline(__always) private func postingOffset(_ t: Int) -> Int {
        Int(postingOffsets.loadUnaligned(fromByteOffset: t * 8, as: UInt64.self))
    }

    private func term(_ t: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: termBytes + Int(termOffsets[t]), count: Int(termOffsets[t + 1] - termOffsets[t]))
    }

    /// The postings of `word` as (row, tf) pairs, or an empty buffer.
    func postings(of word: String) -> (start: UnsafePointer<UInt32>, count: Int) {
        let key = Array(word.utf8)
        var lo = 0, hi = termCount
        while lo < hi {
            let mid = (lo + hi) / 2
            if term(mid).lexicographicallyPrecedes(key) { lo = mid + 1 } else { hi = mid }
        }
        guard lo < termCount, term(lo).elementsEqual(key) else { return (postings, 0) }
        let a = postingOffset(lo), b = postingOffset(lo + 1)
        return (postings + 2 * a, b - a)
    }
}
