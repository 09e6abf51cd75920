import Foundation

/// Per-segment attribute indexes: sorted columns for ranges, posting lists for values,
/// presence bitmaps. A filter becomes a bitmap of allowed rows without decoding any
/// attribute record per query. Each attribute's column is built once, on the first filter naming it.
final class AttributeIndex: @unchecked Sendable {
    enum Column {
        case ints(values: [Int64], rows: [UInt32], present: Bitmap)
        case floats(values: [Double], rows: [UInt32], present: Bitmap)
        case strings(values: [String], rows: [UInt32], postings: [String: [UInt32]], present: Bitmap)
        case bools(trues: Bitmap, falses: Bitmap)
        case arrays(postings: [String: [UInt32]], present: Bitmap)
        /// Integer and float arrays: each element as the double it is (exact below 2^53).
        case numberArrays(postings: [Double: [UInt32]], present: Bitmap)
        /// Object attributes: only their presence (their members have columns of their own, by dotted path).
        case objects(present: Bitmap)
    }

    let rows: Int
    private let read: (_ key: [UInt8], _ row: Int) throws -> AttributeValue?
    private let lock = NSLock()
    private var built: [String: Column?] = [:]

    /// `read` returns one attribute of one row; columns are built per attribute on first use,
    /// so only attributes that filters name are ever indexed.
    init(rows: Int, read: @escaping (_ key: [UInt8], _ row: Int) throws -> AttributeValue?) {
        self.rows = rows
        self.read = read
    }

    /// Builds every column that `filter` names (before evaluation, which must not throw).
    func prepare(_ filter: Filter) throws {
        for k in filter.attributeNames where lock.withLock({ built[k] == nil }) {
            let c = try buildColumn(k)
            lock.withLock { built[k] = .some(c) }
        }
    }

    private func column(_ k: String) -> Column? { lock.withLock { built[k] ?? nil } }

    private func buildColumn(_ k: String) throws -> Column? {
        let key = Array(k.utf8)
        var ints: [(Int64, UInt32)] = [], floats: [(Double, UInt32)] = [], strings: [([UInt8], UInt32)] = []
        var trues = Bitmap(count: rows), falses = Bitmap(count: rows), sawBool = false
        var postings: [String: [UInt32]] = [:], arrayPresent = Bitmap(count: rows), sawArray = false
        var numberPostings: [Double: [UInt32]] = [:], sawNumberArray = false, objects = Bitmap(count: rows), sawObject = false
        for r in 0..<rows {
            guard let v = try read(key, r) else { continue }
            let row = UInt32(r)
            switch v {
            case .int(let i): ints.append((i, row))
            case .float(let d): floats.append((d, row))
            case .string(let s): strings.append((Array(s.utf8), row))
            case .bool(let b): sawBool = true; if b { trues.insert(r) } else { falses.insert(r) }
            case .stringArray(let a):
                sawArray = true
                for s in Set(a) { postings[s, default: []].append(row) }
                arrayPresent.insert(r)
            case .intArray(let a):
                sawNumberArray = true
                for x in Set(a) { numberPostings[Double(x), default: []].append(row) }
                arrayPresent.insert(r)
            case .floatArray(let a):
                sawNumberArray = true
                for x in Set(a) { numberPostings[x, default: []].append(row) }
                arrayPresent.insert(r)
            case .object: sawObject = true; objects.insert(r)
            case .null: break
            }
        }
        if sawObject { return .objects(present: objects) }
        // One type per attribute (the schema enforces it), but for numbers: an attribute widened
        // from int to float holds both, and is one float column.
        if !ints.isEmpty && !floats.isEmpty {
            floats += ints.map { (Double($0.0), $0.1) }
            ints = []
        }
        if sawNumberArray { return .numberArrays(postings: numberPostings, present: arrayPresent) }
        if !ints.isEmpty {
            ints.sort { $0.0 < $1.0 }
            return .ints(values: ints.map(\.0), rows: ints.map(\.1), present: Bitmap(count: rows, rows: ints.map(\.1)))
        }
        if !floats.isEmpty {
            floats.sort { $0.0 < $1.0 }
            return .floats(values: floats.map(\.0), rows: floats.map(\.1), present: Bitmap(count: rows, rows: floats.map(\.1)))
        }
        if !strings.isEmpty {
            strings.sort { $0.0.lexicographicallyPrecedes($1.0) }
            let values = strings.map { String(decoding: $0.0, as: UTF8.self) }
            var post: [String: [UInt32]] = [:]
            for (v, (_, r)) in zip(values, strings) { post[v, default: []].append(r) }
            return .strings(values: values, rows: strings.map(\.1), postings: post, present: Bitmap(count: rows, rows: strings.map(\.1)))
        }
        if sawBool { return .bools(trues: trues, falses: falses) }
        if sawArray { return .arrays(postings: postings, present: arrayPresent) }
        return nil
    }

    private func rowsBitmap(_ rows: some Sequence<UInt32>) -> Bitmap { Bitmap(count: self.rows, rows: rows) }

    private func present(_ k: String) -> Bitmap {
        switch column(k) {
        case .ints(_, _, let p)?, .floats(_, _, let p)?, .strings(_, _, _, let p)?, .arrays(_, let p)?, .numberArrays(_, let p)?,
            .objects(let p)?:
            return p
        case .bools(let t, let f)?: var b = t; b.formUnion(f); return b
        case nil: return Bitmap(count: rows)
        }
    }

    /// Rows matching `value` exactly (null: rows without the attribute).
    private func equal(_ k: String, _ value: AttributeValue) -> Bitmap {
        if value == .null { var b = present(k); b.invert(); return b }
        switch (column(k), value) {
        case (.ints(let vs, let rs, _)?, .int(let i)): return rowsBitmap(rs[range(vs, i, i, true, true)])
        case (.floats(let vs, let rs, _)?, .float(let d)): return rowsBitmap(rs[range(vs, d, d, true, true)])
        case (.floats(let vs, let rs, _)?, .int(let i)): return rowsBitmap(rs[range(vs, Double(i), Double(i), true, true)])
        case (.ints(let vs, let rs, _)?, .float(let d)):
            guard let i = Int64(exactly: d) else { return Bitmap(count: rows) }
            return rowsBitmap(rs[range(vs, i, i, true, true)])
        case (.strings(_, _, let p, _)?, .string(let s)): return rowsBitmap(p[s] ?? [])
        case (.bools(let t, let f)?, .bool(let b)): return b ? t : f
        case (.arrays(let p, _)?, .string(let s)): return rowsBitmap(p[s] ?? [])
        case (.numberArrays(let p, _)?, .int(let i)): return rowsBitmap(p[Double(i)] ?? [])
        case (.numberArrays(let p, _)?, .float(let d)): return rowsBitmap(p[d] ?? [])
        default: return Bitmap(count: rows)
        }
    }

    /// Adds the rows matching `value` exactly to `b` (the `in` operator's per-value step).
    private func insertEqual(_ k: String, _ value: AttributeValue, into b: inout Bitmap) {
        func add(_ rows: some Sequence<UInt32>) { for r in rows { b.insert(Int(r)) } }
        guard let column = column(k) else {
            if value == .null { b.formUnion(equal(k, value)) }  // a segment without the attribute: only null matches
            return
        }
        switch (column, value) {
        case (.ints(let vs, let rs, _), .int(let i)): add(rs[range(vs, i, i, true, true)])
        case (.ints(let vs, let rs, _), .float(let d)): if let i = Int64(exactly: d) { add(rs[range(vs, i, i, true, true)]) }
        case (.floats(let vs, let rs, _), .float(let d)): add(rs[range(vs, d, d, true, true)])
        case (.floats(let vs, let rs, _), .int(let i)): add(rs[range(vs, Double(i), Double(i), true, true)])
        case (.strings(_, _, let p, _), .string(let s)): add(p[s] ?? [])
        case (.arrays(let p, _), .string(let s)): add(p[s] ?? [])
        case (.numberArrays(let p, _), .int(let i)): add(p[Double(i)] ?? [])
        case (.numberArrays(let p, _), .float(let d)): add(p[d] ?? [])
        case (_, .null), (.bools, .bool): b.formUnion(equal(k, value))  // whole bitmaps anyway
        default: break  // another type: no row equals it
        }
    }

    /// Index range of sorted `vs` within [lo, hi] (bounds inclusive or not; nil = open).
    private func range<T: Comparable>(_ vs: [T], _ lo: T?, _ hi: T?, _ loIn: Bool, _ hiIn: Bool) -> Range<Int> {
        range(vs, lo, hi, loIn, hiIn, less: <)
    }

    private func range<T>(_ vs: [T], _ lo: T?, _ hi: T?, _ loIn: Bool, _ hiIn: Bool, less: (T, T) -> Bool) -> Range<Int> {
        func bound(_ x: T, upper: Bool) -> Int {  // first index with vs[i] > x (upper) or >= x (lower)
            var a = 0, b = vs.count
            while a < b {
                let m = (a + b) / 2
                if upper ? !less(x, vs[m]) : less(vs[m], x) { a = m + 1 } else { b = m }
            }
            return a
        }
        let start = lo.map { bound($0, upper: !loIn) } ?? 0
        let end = hi.map { bound($0, upper: hiIn) } ?? vs.count
        return start..<max(start, end)
    }

    private func ordered(_ k: String, _ v: AttributeValue, lo: Bool, inclusive: Bool) -> Bitmap {
        switch (column(k), v) {
        case (.ints(let vs, let rs, _)?, .int(let i)):
            return rowsBitmap(rs[lo ? range(vs, i, nil, inclusive, false) : range(vs, nil, i, false, inclusive)])
        case (.floats(let vs, let rs, _)?, .float(let d)):
            return rowsBitmap(rs[lo ? range(vs, d, nil, inclusive, false) : range(vs, nil, d, false, inclusive)])
        case (.floats(let vs, let rs, _)?, .int(let i)):
            let d = Double(i)
            return rowsBitmap(rs[lo ? range(vs, d, nil, inclusive, false) : range(vs, nil, d, false, inclusive)])
        case (.ints(let vs, let rs, _)?, .float(let d)):
            // An integer column against a float: the same rows as against the integer bound it implies.
            guard !d.isNaN else { return Bitmap(count: rows) }
            let bound = lo ? (inclusive ? d.rounded(.up) : d.rounded(.down) + 1) : (inclusive ? d.rounded(.down) : d.rounded(.up) - 1)
            // Past Int64's range (2^63 is the first double beyond it): every row or none.
            if bound >= 0x1p63 { return lo ? Bitmap(count: rows) : rowsBitmap(rs) }
            if bound < -0x1p63 { return lo ? rowsBitmap(rs) : Bitmap(count: rows) }
            guard let i = Int64(exactly: bound) else { return Bitmap(count: rows) }
            return rowsBitmap(rs[lo ? range(vs, i, nil, true, false) : range(vs, nil, i, false, true)])
        case (.strings(let vs, let rs, _, _)?, .string(let s)):
            let r = lo ? range(vs, s, nil, inclusive, false, less: utf8Less) : range(vs, nil, s, false, inclusive, less: utf8Less)
            return rowsBitmap(rs[r])
        default:
            return Bitmap(count: rows)
        }
    }

    /// The rows that `filter` admits (deletions not considered).
    func evaluate(_ filter: Filter) -> Bitmap {
        switch filter {
        case .and(let fs):
            var b = Bitmap(count: rows, filled: true)
            for f in fs { b.formIntersection(evaluate(f)) }
            return b
        case .or(let fs):
            var b = Bitmap(count: rows)
            for f in fs { b.formUnion(evaluate(f)) }
            return b
        case .not(let f): var b = evaluate(f); b.invert(); return b
        case .eq(let k, let v): return equal(k, v)
        case .ne(let k, let v): var b = equal(k, v); b.invert(); return b
        case .in(let k, let vs):
            // Row by row into one bitmap: a union of a bitmap per value would cost rows/64 words per value.
            var b = Bitmap(count: rows)
            for v in Set(vs) { insertEqual(k, v, into: &b) }
            return b
        case .notIn(let k, let vs): var b = evaluate(.in(k, vs)); b.invert(); return b
        case .lt(let k, let v): return ordered(k, v, lo: false, inclusive: false)
        case .lte(let k, let v): return ordered(k, v, lo: false, inclusive: true)
        case .gt(let k, let v): return ordered(k, v, lo: true, inclusive: false)
        case .gte(let k, let v): return ordered(k, v, lo: true, inclusive: true)
        case .exists(let k): return present(k)
        case .contains(let k, let s):
            if case .arrays(let p, _)? = column(k) { return rowsBitmap(p[s] ?? []) }
            return Bitmap(count: rows)
        case .prefix(let k, let p):
            guard case .strings(let vs, let rs, _, _)? = column(k) else { return Bitmap(count: rows) }
            var i = range(vs, p, nil, true, false, less: utf8Less).lowerBound
            var b = Bitmap(count: rows)
            while i < vs.count && vs[i].utf8.starts(with: p.utf8) { b.insert(Int(rs[i])); i += 1 }
            return b
        }
    }
}
