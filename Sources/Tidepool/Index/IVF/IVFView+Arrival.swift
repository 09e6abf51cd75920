/// An IVF section whose lists' codes arrive by range (a query node's cold start on object
/// storage): opening reads the header, centroids, lists and the codec's header and tables, and a
/// search fetches the codes of only the lists it probes (`Segment.ensureLists`). The codes are
/// the section's tail for SQ8 and PQ; other codecs are read whole.
extension IVFView {
    /// How many of the section's first bytes opening needs when its lists' codes may arrive
    /// later: everything before the codes of SQ8 or PQ lists. Nil for other codecs, or a header
    /// that does not say (opening then reads the whole section and reports what is wrong). Reads
    /// only the section's first `IVFHeader.size` bytes.
    static func bytesBeforeCodes(section bytes: UnsafeRawBufferPointer, dimension: Int) -> Int? {
        guard let h = try? IVFHeader.decode(bytes, { .corrupt(file: "", offset: $0, reason: $1) }) else { return nil }
        let tables: Int
        switch h.codec {
        case .sq8: tables = ScalarQuantizer.codesOffset(dimension: dimension)
        case .pq: tables = PQBlockHeader.size + 4 * 256 * dimension
        case .flat, .rabitq: return nil
        }
        guard h.codecOffset >= IVFHeader.size, case let (end, false) = h.codecOffset.addingReportingOverflow(tables),
            end <= bytes.count
        else { return nil }
        return end
    }

    /// Where list `l`'s codes lie in memory (empty for flat and RaBitQ lists, read whole).
    func codeBytes(ofList l: Int) -> UnsafeRawBufferPointer {
        switch codes {
        case .pq(let pq):
            let span = pq.blockStarts.map { $0[l]..<$0[l + 1] } ?? (Int(offsets[l]) * pq.m)..<(Int(offsets[l + 1]) * pq.m)
            return UnsafeRawBufferPointer(start: pq.codes + span.lowerBound, count: span.count)
        case .sq8(let sq8):
            return UnsafeRawBufferPointer(start: sq8.codes + Int(offsets[l]) * dimension, count: list(l).count * dimension)
        case .flat, .rabitq:
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
    }
}
