import TidepoolKernels

/// Exact scans of a container's rows: every row of a range through the SIMD batch kernel, or only
/// the rows a filter's bitmap allows. Dead rows and rows newer than the snapshot are skipped.
extension ContainerRows {
    /// Scans rows `range` in batches of `SearchScratch.distanceBufferCapacity`.
    func scan(_ query: IndexQuery, rows range: Range<Int>, container: Int, into top: inout TopK, scratch: SearchScratch) {
        let buf = scratch.distanceBuffer
        let dimension = query.dimension
        var a = range.lowerBound
        while a < range.upperBound {
            let n = min(SearchScratch.distanceBufferCapacity, range.upperBound - a)
            query.distance.batch(query.vector, vectors + a * dimension, count: n, into: buf)
            var threshold = top.threshold
            for i in 0..<n where buf[i] <= threshold {
                let row = UInt32(a + i)
                if dead.isDead(row) { continue }
                if !isVisible(a + i) { continue }
                top.push(buf[i], RowKey(container: container, row: row).packed)
                threshold = top.threshold
            }
            a += n
        }
    }

    /// Scans the rows of `range` that `allowed` holds.
    func scan(_ query: IndexQuery, allowed: Bitmap, rows range: Range<Int>, container: Int, into top: inout TopK) {
        var threshold = top.threshold
        let dimension = query.dimension
        allowed.words.withUnsafeBufferPointer { words in
            var wi = range.lowerBound >> 6
            while wi < words.count && wi << 6 < range.upperBound {
                var w = words[wi]
                while w != 0 {
                    let row = wi << 6 | w.trailingZeroBitCount
                    w &= w - 1
                    if !range.contains(row) { continue }
                    if dead.isDead(UInt32(row)) { continue }
                    if !isVisible(row) { continue }
                    let d = query.distance(query.vector, vectors + row * dimension)
                    if d <= threshold {
                        top.push(d, RowKey(container: container, row: UInt32(row)).packed)
                        threshold = top.threshold
                    }
                }
                wi += 1
            }
        }
    }
}
