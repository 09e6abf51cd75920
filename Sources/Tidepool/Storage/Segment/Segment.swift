import Foundation
import Logging
import Metrics

/// An immutable, memory-mapped segment: vectors, ids, attributes and an optional
/// HNSW graph, searched in place. Opening validates the header, footer, section
/// table and record offsets (and, by default, every section checksum), so damage
/// is an error naming the file and offset rather than a crash or a wrong answer.
final class Segment: @unchecked Sendable {
    let id: UInt64
    let name: String
    let file: MappedFile
    let dimension: Int
    let metric: Metric
    let rowCount: Int
    let maxSeq: UInt64
    let vectors: UnsafePointer<Float>
    let graph: StoredGraph?
    let text: TextIndexView?
    /// What the graph walk reads instead of `vectors` (SQ8 codes or f16), per the quantization
    /// setting the segment was written under.
    let codes: CompressedVectors?
    var quantization: Quantization { codes?.quantization ?? .none }
    /// The inverted file, for IVF segments (over a pinned copy once the segment is cold; see
    /// `Segment+ColdTier.swift`).
    var ivf: IVFView?
    /// Where a search reads from: set at opening, changed only before the segment is published
    /// to searches (`moveToColdTier`).
    var tier: SegmentTier
    /// The IVF section copied into anonymous memory for the cold tier (nil otherwise).
    var pinnedIndex: UnsafeMutableRawBufferPointer?
    /// What the database's memory budget charged this segment (returned when it is freed).
    var budgetCharge: BudgetCharge?
    let tombstones: Tombstones
    /// The rows without a vector (zeros in `vectors`, linked by no graph); nil when every row has one.
    let vectorless: Bitmap?
    /// The file's bytes, which may still be arriving (see `init`).
    let arriving: ArrivingFile
    let vectorSection: SectionEntry
    /// Whether the f32 rows were still arriving when the segment opened, so an IVF re-rank
    /// fetches its candidates' rows (`ensureRows`) and any other reader waits for all (`awaitVectors`).
    let rerankFetchesRows: Bool
    /// The IVF lists' codes when they were still arriving at opening (a search fetches the
    /// lists it probes, `ensureLists`); nil when opening read them.
    private let arrivingCodes: Range<Int>?
    private let idRecords: RecordTable
    private let attributeRecords: RecordTable
    let sections: [SectionEntry]

    private let indexLock = NSLock()
    private var attributeIndexCache: AttributeIndex?
    private var bitmapCache: [Filter: Bitmap] = [:]
    private var vectorRowsCache: Bitmap?

    /// The rows that have a vector, for vector searches of a collection that holds rows without
    /// one (cached: the same for every such search).
    func vectorRows() -> Bitmap {
        indexLock.withLock {
            if let b = vectorRowsCache { return b }
            var b = Bitmap(count: rowCount, filled: true)
            if let v = vectorless { b.subtract(v) }
            vectorRowsCache = b
            return b
        }
    }

    /// The rows `filter` (validated) allows, cached: applications repeat their filters.
    func allowedRows(_ filter: Filter) throws -> Bitmap {
        if let b = indexLock.withLock({ bitmapCache[filter] }) {
            Counter(label: "tidepool_filter_cache_hits").increment()
            return b
        }
        Counter(label: "tidepool_filter_cache_misses").increment()
        let index = try attributeIndex()
        try index.prepare(filter)
        let b = index.evaluate(filter)
        indexLock.withLock {
            if bitmapCache.count >= 64 { bitmapCache.removeAll() }
            bitmapCache[filter] = b
        }
        return b
    }

    var path: String { file.name }

    /// The segment's attribute indexes, built from its attribute records on first use.
    func attributeIndex() throws -> AttributeIndex {
        indexLock.lock()
        defer { indexLock.unlock() }
        if let a = attributeIndexCache { return a }
        let a = AttributeIndex(rows: rowCount) { [unowned self] key, row in try self.attribute(row, key: key) }
        attributeIndexCache = a
        return a
    }
    var byteCount: Int { file.bytes.count }

    /// Opens segment `name`. With `size` (the manifest's byte count) the file may arrive by range
    /// (`StorageBackend.mapArriving`): the header, footer, section table and every section but
    /// the f32 rows are fetched first; an IVF segment whose lists hold SQ8 or PQ codes is
    /// searchable then, before even those codes are here (a search fetches the codes of the
    /// lists it probes, `ensureLists`, and its re-rank its candidates' rows, `ensureRows`),
    /// while the rest follows in the background, codes first, and its checksums are verified
    /// once it is here. Any other segment waits for all of its bytes.
    ///
    /// With `rows` (the manifest's) too, the first round of requests also fetches what likely
    /// follows the f32 rows where the writer puts them (right after the header) up to the lists'
    /// codes (`openingGuess`), so opening usually costs one round trip. A guess only: the
    /// section table decides what is read.
    init(
        id: UInt64, name: String, storage: any StorageBackend, dimension: Int, metric: Metric, verifyChecksums: Bool,
        size: Int? = nil, rows expectedRows: Int? = nil
    ) throws {
        self.id = id
        self.name = name
        let arriving = try size.map { try storage.mapArriving(name, size: $0) } ?? ArrivingFile(complete: try storage.map(name))
        self.arriving = arriving
        file = arriving.file
        let bytes = file.bytes
        let path = file.name
        func corrupt(_ offset: Int, _ reason: String) -> TidepoolError { .corrupt(file: path, offset: offset, reason: reason) }

        guard bytes.count >= SegmentHeader.size + SegmentFooter.size else {
            throw corrupt(bytes.count, "segment file too short (\(bytes.count) bytes)")
        }
        var first = [0..<SegmentHeader.size, max(0, bytes.count - Self.tailBytes)..<bytes.count]
        if let r = expectedRows, r >= 0, case let (v, false) = r.multipliedReportingOverflow(by: dimension * 4),
            v < bytes.count - SegmentHeader.size
        {
            let start = SegmentHeader.size + v
            let guessed = min(bytes.count, start + Self.openingGuess(rows: r, dimension: dimension))
            first.append(start..<guessed)
            // What follows is likely an IVF section's codes (a search's next need) or, in other
            // segments, what opening reads next anyway: on its way too, without waiting for it.
            let tail = max(guessed, bytes.count - Self.tailBytes)
            arriving.prefetch([guessed..<min(tail, guessed + Self.codesFetchedWhole)])
        }
        try arriving.ensure(first)
        let header = try SegmentHeader.decode(bytes, file: path, dimension: dimension, metric: metric)
        let footer = try SegmentFooter.decode(bytes, file: path, headerRows: header.rows)
        if footer.tableOffset < bytes.count { try arriving.ensure([footer.tableOffset..<bytes.count]) }
        let parsed = try SectionEntry.decodeTable(bytes, file: path, footer: footer)
        maxSeq = header.maxSeq
        self.dimension = dimension
        self.metric = metric
        rowCount = header.rows
        func find(_ k: SegmentFormat.Kind) -> SectionEntry? { parsed.first { $0.kind == k.rawValue } }
        guard let vec = find(.vectors), let ids = find(.ids), let attrs = find(.attributes) else {
            throw corrupt(footer.tableOffset, "segment lacks a vectors, ids or attributes section")
        }
        guard (header.flags & SegmentHeader.hasGraphFlag != 0) == (find(.hnsw) != nil) else {
            throw corrupt(
                SegmentHeader.flagsOffset,
                "segment flags \(header.flags) disagree with its sections (graph section \(find(.hnsw) == nil ? "absent" : "present"))")
        }
        guard (header.flags & SegmentHeader.hasVectorlessFlag != 0) == (find(.vectorless) != nil) else {
            throw corrupt(
                SegmentHeader.flagsOffset,
                "segment flags \(header.flags) disagree with its sections (vectorless section \(find(.vectorless) == nil ? "absent" : "present"))"
            )
        }
        let rows = header.rows
        guard vec.length == rows * dimension * 4 else {
            throw corrupt(vec.offset, "vector section holds \(vec.length) bytes, expected \(rows * dimension * 4)")
        }
        // Everything but the f32 rows, in parallel; the rows too unless only an IVF re-rank reads them.
        let mayDefer = !arriving.isComplete && find(.ivf) != nil && find(.hnsw) == nil
        let base = bytes.baseAddress!
        func section(_ s: SectionEntry) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + s.offset, count: s.length) }
        // An IVF section's SQ8/PQ codes (its tail) may arrive later too: its header says where they start.
        var codesFrom: Int? = nil
        if mayDefer, let v = find(.ivf), v.length >= IVFHeader.size {
            try arriving.ensure([v.offset..<(v.offset + IVFHeader.size)])
            codesFrom = IVFView.bytesBeforeCodes(section: section(v), dimension: dimension).map { v.offset + $0 }
        }
        try arriving.ensure(
            parsed.filter { !mayDefer || $0.kind != vec.kind }.map {
                $0.kind == SegmentFormat.Kind.ivf.rawValue && codesFrom != nil
                    ? $0.offset..<codesFrom! : $0.offset..<($0.offset + $0.length)
            })
        vectors = (base + vec.offset).assumingMemoryBound(to: Float.self)
        vectorSection = vec
        idRecords = try RecordTable(section: ids, in: bytes, rows: rows, file: path, what: "id")
        attributeRecords = try RecordTable(section: attrs, in: bytes, rows: rows, file: path, what: "attribute")

        let ivf = try find(.ivf).map {
            try IVFView(bytes: section($0), file: path, fileOffset: $0.offset, dimension: dimension, rows: rows)
        }
        self.ivf = ivf
        let deferred: Bool
        switch ivf?.codes {
        case .sq8?, .pq?: deferred = mayDefer
        default: deferred = false
        }
        if mayDefer && !deferred {
            try arriving.ensure([vec.offset..<(vec.offset + vec.length)] + (find(.ivf).map { [$0.offset..<($0.offset + $0.length)] } ?? []))
        }
        rerankFetchesRows = deferred
        let ivfEntry = find(.ivf)
        let codesRange: Range<Int>? = deferred ? codesFrom.flatMap { from in ivfEntry.map { from..<($0.offset + $0.length) } } : nil
        arrivingCodes = codesRange
        // Codes of a few requests' size are on their way at once, in large requests, while
        // the collection opens: its first searches then wait for those rather than sending one
        // small request per probed list (on a store billed and paced per request, fewer is faster).
        if let c = codesRange, c.count <= Self.codesFetchedWhole { arriving.prefetch([c]) }
        let arrivingSections = parsed.filter { deferred && ($0.kind == vec.kind || ($0 == ivfEntry && codesRange != nil)) }
        if verifyChecksums { for s in parsed where !arrivingSections.contains(s) { try s.verify(bytes, file: path) } }
        if !deferred { arriving.complete() }  // checked: the copy joins the cache

        vectorless = try find(.vectorless).map { entry in
            // Always checked: a flipped bit would hand a row without a vector to vector searches.
            try entry.verify(bytes, file: path)
            return try Segment.decodeVectorless(section(entry), rows: rows, file: path, offset: entry.offset)
        }
        graph = try find(.hnsw).map { try StoredGraph(bytes: section($0), file: path, fileOffset: $0.offset, expectedCount: rows) }
        text = try find(.text).map { try TextIndexView(bytes: section($0), file: path, fileOffset: $0.offset, expectedRows: rows) }
        if let q = find(.sq8) {
            codes = .sq8(try SQ8View(bytes: section(q), file: path, fileOffset: q.offset, dimension: dimension, rows: rows))
        } else if let h = find(.f16) {
            codes = .f16(try F16View(bytes: section(h), file: path, fileOffset: h.offset, dimension: dimension, rows: rows))
        } else {
            codes = nil
        }
        sections = parsed
        tombstones = Tombstones(count: rows)
        tier = graph != nil || ivf == nil ? .hot : .warm
        if deferred {
            let (mapped, entries, display) = (self.file, arrivingSections, path)
            let check: (@Sendable () throws -> Void)? =
                verifyChecksums ? { @Sendable in for e in entries { try e.verify(mapped.bytes, file: display) } } : nil
            // Codes first: until they are here, every search fetches its lists' codes.
            arriving.fillInBackground(logger: Logger(label: "tidepool"), from: codesRange?.lowerBound ?? 0, check: check)
        }
    }

    deinit { pinnedIndex?.deallocate() }

    /// How much of a file's end opening fetches first: the footer and, in one request, the
    /// section table before it.
    static let tailBytes = 64 << 10

    /// The most IVF codes opening sends for at once (see `init`); above it, searches fetch
    /// their lists' codes and the background fill brings the rest.
    static let codesFetchedWhole = 32 << 20

    /// How many bytes after the f32 rows opening fetches in its first round: about what ids,
    /// attributes and an IVF section's centroids, lists and codebooks take (≈ 30 bytes a row,
    /// 4·√rows centroids, 256 codebook entries) and no more, so an IVF segment's codes are not
    /// on the path to its first answer. What this misses, a second round fetches.
    static func openingGuess(rows: Int, dimension: Int) -> Int {
        let centroids = Int(4 * Double(max(0, rows)).squareRoot()) + 256
        return 30 * rows + 4 * dimension * centroids
    }

    /// Bytes of one section (0 when the segment has none).
    func sectionLength(_ kind: SegmentFormat.Kind) -> Int { sections.first { $0.kind == kind.rawValue }?.length ?? 0 }

    /// Recomputes every section checksum (once every byte is here).
    func verifyChecksums() throws {
        try awaitVectors()
        for s in sections { try s.verify(file.bytes, file: path) }
    }

    /// Whether the f32 rows are all here (false while they arrive, see `init`).
    var vectorsArrived: Bool { arriving.isComplete }

    /// Blocks until the f32 rows are all here (at once when they are), fetching what is missing;
    /// `deadlineExceeded` when `deadline` passes while it waits.
    func awaitVectors(deadline: Deadline? = nil) throws { try arriving.waitUntilComplete(deadline: deadline) }

    /// Blocks until the codes of IVF lists `lists` are here, fetching those that are not (a
    /// search does before it scans them; see `init`).
    func ensureLists(_ lists: some Sequence<Int>) throws {
        guard arrivingCodes != nil, !arriving.isComplete, let ivf else { return }
        let base = UnsafeRawPointer(file.bytes.baseAddress!)
        try arriving.ensure(
            lists.compactMap { l in
                let span = ivf.codeBytes(ofList: l)
                guard let start = span.baseAddress, span.count > 0 else { return nil }
                return (start - base)..<(start - base + span.count)
            })
    }

    /// Whether a search of the IVF lists must fetch their codes first (`ensureLists`).
    var listsFetchCodes: Bool { arrivingCodes != nil && !arriving.isComplete }

    /// Blocks until the f32 rows of `rows` are here, fetching those that are not.
    func ensureRows(_ rows: some Sequence<UInt32>) throws {
        guard !arriving.isComplete else { return }
        let width = dimension * 4
        try arriving.ensure(rows.map { vectorSection.offset + Int($0) * width..<vectorSection.offset + (Int($0) + 1) * width })
    }

    /// Row `row`'s f32 vector: only for readers that waited for it (`awaitVectors`, `ensureRows`).
    @inline(__always) func vector(_ row: Int) -> UnsafePointer<Float> { vectors + row * dimension }

    func documentID(_ row: Int) throws -> DocumentID {
        var r = idRecords.record(row, file: path)
        return try RecordCodec.decodeID(&r)
    }

    func attributes(_ row: Int) throws -> [String: AttributeValue] {
        var r = attributeRecords.record(row, file: path)
        if r.remaining == 0 { return [:] }
        return try RecordCodec.decodeAttributes(&r)
    }

    /// One attribute of a row, read without decoding the rest of its record; a dotted path that
    /// names no attribute reads the object members it may name (`AttributeValue.lookup`).
    func attribute(_ row: Int, key: [UInt8]) throws -> AttributeValue? {
        var r = attributeRecords.record(row, file: path)
        if let v = try RecordCodec.decodeAttribute(&r, key: key) { return v }
        guard key.contains(UInt8(ascii: ".")) else { return nil }
        return AttributeValue.lookup(String(decoding: key, as: UTF8.self), in: try attributes(row))
    }

    func vectorArray(_ row: Int) throws -> [Float] {
        guard row >= 0 && row < rowCount, !(vectorless?.contains(row) ?? false) else { return [] }
        try ensureRows(CollectionOfOne(UInt32(row)))
        return Array(UnsafeBufferPointer(start: vector(row), count: dimension))
    }
}

/// A records section (ids or attributes): u64 offsets[rows + 1] relative to the section, then
/// the records. Opening checks the offsets start after the table, never fall, and end inside
/// the section, so reading a record is bounds-safe.
struct RecordTable: @unchecked Sendable {
    let base: UnsafeRawPointer
    /// The section's offset in the file, for messages.
    let sectionOffset: Int

    init(section s: SectionEntry, in bytes: UnsafeRawBufferPointer, rows: Int, file: String, what: String) throws {
        let tableLen = (rows + 1) * 8
        guard s.length >= tableLen else {
            throw TidepoolError.corrupt(file: file, offset: s.offset, reason: "\(what) section shorter than its offset table")
        }
        let p = UnsafeRawPointer(bytes.baseAddress!) + s.offset
        var prev = UInt64(tableLen)
        for i in 0...rows {
            let o = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            if o < prev || o > UInt64(s.length) || (i == 0 && o != UInt64(tableLen)) {
                throw TidepoolError.corrupt(
                    file: file, offset: s.offset + i * 8, reason: "\(what) offset \(o) out of order or out of range")
            }
            prev = o
        }
        base = p
        sectionOffset = s.offset
    }

    /// A reader over row `row`'s record.
    @inline(__always) func record(_ row: Int, file: String) -> ByteReader {
        let a = Int(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: row * 8, as: UInt64.self)))
        let b = Int(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: row * 8 + 8, as: UInt64.self)))
        return ByteReader(UnsafeRawBufferPointer(start: base + a, count: b - a), file: file, fileOffset: sectionOffset + a)
    }
}

extension SegmentPlan {
    /// What `segment` was built with (compaction rebuilds a segment whose plan differs from the
    /// planner's for its size under the current settings).
    init(segment s: Segment) {
        if let g = s.graph {
            self = .hnsw(m: g.m, codes: s.quantization)
        } else if let v = s.ivf {
            self = .ivf(codec: v.codec, nlist: v.nlist, pqSubspaces: v.pqSubspaces)
        } else {
            self = .flat
        }
    }
}

extension Segment {
    /// The vectorless section: exactly one u64 word per 64 rows, no bit at or past the row count.
    static func decodeVectorless(_ bytes: UnsafeRawBufferPointer, rows: Int, file: String, offset: Int) throws -> Bitmap {
        let words = (rows + 63) / 64
        guard bytes.count == words * 8 else {
            throw TidepoolError.corrupt(
                file: file, offset: offset, reason: "vectorless section holds \(bytes.count) bytes, expected \(words * 8) for \(rows) rows")
        }
        var b = Bitmap(count: rows)
        for w in 0..<words {
            var word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: w * 8, as: UInt64.self))
            while word != 0 {
                let row = w * 64 + word.trailingZeroBitCount
                guard row < rows else {
                    throw TidepoolError.corrupt(
                        file: file, offset: offset + w * 8, reason: "vectorless row \(row) past the segment's \(rows) rows")
                }
                b.insert(row)
                word &= word - 1
            }
        }
        return b
    }
}
