import Foundation
import TidepoolKernels

/// The cold tier: an IVF segment whose index (centroids, lists, codes) is pinned in the process's
/// own memory while its f32 rows stay on disk, read only to re-rank.
///
/// Why pinned: measured in a memory cgroup, a mapped segment whose rows do not fit lets the
/// kernel evict the hot codes along with the rows a re-rank brought in, and every query then
/// faults both back one page at a time (pypi-minilm-100k IVF-PQ: 300 ms a query at 100 MB).
/// Anonymous memory is not reclaimed while there is no swap, so the codes stay; the rows' pages
/// are the only page cache the segment keeps using, and the kernel may drop any of them.
///
/// Why `MADV_WILLNEED` per candidate, then reads through the mapping: the advice submits each
/// row's page read at once without waiting, so the re-rank's reads are in flight together (one
/// disk round trip for all of them rather than one per row, as PostgreSQL prefetches heap pages
/// with `posix_fadvise`), and `MADV_RANDOM` on the mapping stops each fault from reading ahead
/// pages nobody asked for.
extension Segment {
    /// Whether the segment can be cold: an IVF whose lists hold compressed codes with an exact
    /// re-rank (SQ8 or PQ), so a scan reads no f32 row, and whose bytes have all arrived.
    var canBeCold: Bool {
        guard let ivf, arriving.isComplete else { return false }
        return ivf.codec == .sq8 || ivf.codec == .pq
    }

    /// What a search keeps touching in each tier, in bytes: the pinned IVF section and the
    /// tombstones when cold; the graph and the vectors its walk reads, or the IVF section and
    /// the f32 rows its re-rank reads (over time, all of them), otherwise.
    var residentBytes: (hotOrWarm: Int, cold: Int) {
        let tombstoneBytes = rowCount * MemoryLayout<UInt64>.size
        let vectors = sectionLength(.vectors)
        // A walk over codes still re-ranks with f32 rows, which over many queries touch them all.
        let hot = (graph != nil ? sectionLength(.hnsw) + sectionLength(.sq8) + sectionLength(.f16) : sectionLength(.ivf)) + vectors
        return (hot + tombstoneBytes, sectionLength(.ivf) + tombstoneBytes)
    }

    /// Makes the segment cold (see the type's comment). Only before the segment is published to
    /// searches: the IVF view is replaced, not guarded. Does nothing unless `canBeCold`.
    func moveToColdTier() throws {
        guard canBeCold, tier != .cold, let entry = sections.first(where: { $0.kind == SegmentFormat.Kind.ivf.rawValue }) else {
            return
        }
        let pinned = UnsafeMutableRawBufferPointer.allocate(byteCount: max(entry.length, 1), alignment: 64)
        let source = UnsafeRawBufferPointer(rebasing: file.bytes[entry.offset..<(entry.offset + entry.length)])
        pinned.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: entry.length)
        do {
            ivf = try IVFView(
                bytes: UnsafeRawBufferPointer(start: pinned.baseAddress, count: entry.length), file: path, fileOffset: entry.offset,
                dimension: dimension, rows: rowCount)
        } catch {
            pinned.deallocate()
            throw error
        }
        pinnedIndex = pinned
        if let base = file.bytes.baseAddress, file.bytes.count > 0 {
            // Opening's checksum pass mapped every page; unmapping them (the page cache keeps
            // them, and the file is read-only) lets the kernel reclaim them cheaply.
            _ = madvise(UnsafeMutableRawPointer(mutating: base), file.bytes.count, MADV_DONTNEED)
            _ = madvise(UnsafeMutableRawPointer(mutating: base), file.bytes.count, MADV_RANDOM)
        }
        tier = .cold
    }

    /// Asks the kernel to start reading the pages of `rows`' f32 vectors, all at once, without
    /// waiting (a cold re-rank does before it reads them): one `process_madvise` for all of
    /// them where the kernel has it, which on pages already cached costs one system call rather
    /// than one per row (`tp_advise_willneed`).
    func requestRows(_ rows: UnsafeBufferPointer<Neighbor>) {
        guard let base = file.bytes.baseAddress, !rows.isEmpty else { return }
        let mask = Self.pageSize - 1, width = dimension * 4, end = file.bytes.count
        withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: rows.count) { starts in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: rows.count) { lengths in
                var n = 0
                for r in rows {
                    let start = vectorSection.offset + Int(r.id) * width
                    guard start + width <= end else { continue }
                    let lo = start & ~mask
                    starts[n] = base + lo
                    lengths[n] = start + width - lo
                    n += 1
                }
                _ = tp_advise_willneed(starts.baseAddress!, lengths.baseAddress!, n)
            }
        }
    }

    static let pageSize = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
}
