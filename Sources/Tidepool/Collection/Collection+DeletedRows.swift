import Foundation

/// A segment's persisted deletions go into the manifest inline while they are few, and into a
/// `DeletedRowsFile` beside the segment once they are more than `DeletedRowsFile.inlineLimit`:
/// the manifest, rewritten by every flush and read by every query node that catches up, stays a
/// few KiB however many deletions pile up. A segment's deletions up to a flushed sequence number
/// only grow, so the same count means the same rows and the file is reused.
extension Collection {
    /// A manifest entry ready to commit, with the deleted-rows files it names (by segment id,
    /// with their row counts) and the committed files it no longer names.
    struct DeletedRowsCommit {
        var entry: Manifest.CollectionEntry
        var files: [UInt64: (file: String, rows: Int)]
        /// Always empty: replaced files are retired in `entry` (a kept version may need them).
        var replaced: [String]
    }

    /// The manifest entry for `segs` with deletions up to `flushedSeq`, writing the deleted-rows
    /// files it names that do not exist yet. The committed entry's files it no longer names are
    /// retired in the entry: kept versions (and on object storage readers of older manifests)
    /// may still need them; `collectRetiredFiles` deletes them once nothing does.
    func entryWritingDeletedRows(segments segs: [Segment], flushedSeq: UInt64) throws -> DeletedRowsCommit {
        var entry = manifestEntry(segments: segs, flushedSeq: flushedSeq)
        let committed = state.withLock { deletedRowFiles }
        var files: [UInt64: (file: String, rows: Int)] = [:]
        for i in entry.segments.indices where entry.segments[i].deleted.count > DeletedRowsFile.inlineLimit {
            let s = entry.segments[i]
            if let known = committed[s.id], known.rows == s.deleted.count {
                files[s.id] = known
            } else {
                let file = DeletedRowsFile.fileName(segmentID: s.id, flushedSeq: flushedSeq)
                try storage.writeWhole(folder + "/segments/" + file, DeletedRowsFile(segmentID: s.id, rows: s.deleted).encoded())
                files[s.id] = (file, s.deleted.count)
            }
            entry.segments[i].deletedFile = files[s.id]?.file
            entry.segments[i].deleted = []
        }
        let named = Set(files.values.map(\.file))
        let replaced = committed.values.map(\.file).filter { !named.contains($0) }.sorted()
        guard !replaced.isEmpty else {
            return DeletedRowsCommit(entry: entry, files: files, replaced: replaced)
        }
        let now = Date().timeIntervalSince1970
        entry.retired = (entry.retired ?? []) + replaced.map { Manifest.RetiredFile(file: $0, generation: 0, time: now) }
        return DeletedRowsCommit(entry: entry, files: files, replaced: [])
    }

    /// After `commit.entry` was committed: remembers its deleted-rows files and deletes the
    /// replaced ones.
    func finishDeletedRows(_ commit: DeletedRowsCommit) {
        state.withLock { deletedRowFiles = commit.files }
        for f in commit.replaced { try? storage.delete(folder + "/segments/" + f) }
    }

    /// A segment's persisted deleted rows: inline in `s`, or read from the file it names (a
    /// plain `.del` name in `segments/`, no larger than `rowCount` rows can make it, and checked
    /// against the segment it belongs to).
    func loadDeletedRows(_ s: Manifest.SegmentEntry, rowCount: Int) throws -> [UInt32] {
        guard let file = s.deletedFile else { return s.deleted }
        guard file.hasSuffix(".del"), !file.contains("/"), !file.hasPrefix(".") else {
            throw TidepoolError.corrupt(
                file: storage.manifestDisplayPath, offset: 0, reason: "collection '\(name)': deleted-rows file name '\(file)' is not one")
        }
        let name = folder + "/segments/" + file
        let size = try storage.size(of: name)
        let largest = DeletedRowsFile.headerSize + 4 * rowCount + 4
        guard size <= largest else {
            throw TidepoolError.corrupt(
                file: storage.displayPath(name), offset: 0,
                reason: "deleted-rows file of \(size) bytes, more than \(largest) for a segment of \(rowCount) rows")
        }
        let decoded = try DeletedRowsFile.decode(try storage.read(name, offset: 0, count: size), file: storage.displayPath(name))
        guard decoded.segmentID == s.id else {
            throw TidepoolError.corrupt(
                file: storage.displayPath(name), offset: 12,
                reason: "deleted rows of segment \(decoded.segmentID), named for segment \(s.id)")
        }
        return decoded.rows
    }
}
