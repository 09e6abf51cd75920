/// Per-segment attribute indexes: sorted columns for ranges, posting lists for values,
/// presence bitmaps. A filter becomes a bitmap of allowed rows without decoding any
/// attribute record. Built once per segment, on its first filtered query.
final class AttributeIndex: @unchecked Sendable {
    enum Column {
        case ints(values: [Int64], rows: [UInt32], present: Bitmap)
        case floats(values: [Double], rows: [UInt32], present: Bitmap)
        case strings(values: [String], rows: [UInt32], postings: [String: [UInt32]], present: Bitmap)
        case bools(trues: Bitmap, falses: Bitmap)
        case arrays(postings: [String: [UInt32]], present: Bitmap)
    }

    let rows: Int
    private(set) var columns: [String: Column] = [:]

    init(rows: Int, attributes: (Int) throws -> [String: AttributeValue]) rethrows {
        self.rows = rows
        var ints: [String: [(Int64, UInt32)]] = [:], floats: [String: [(Double, UInt32)]] = [:]
        var strings: [String: [(String, UInt32)]] = [:], bools: [String: (Bitmap, Bitmap)] = [:]
        var arrays: [String: [String: [UInt32]]] = [:], arrayPresent: [String: Bitmap] = [:]
        for r in 0..<rows {
            let row = UInt32(r)
            for (k, v) in try attributes(r) {
                switch v {
                case .int(let i): ints[k, default: []].append((i, row))
                case .float(let d): floats[k, default: []].append((d, row))
                case .string(let s): strings[k, default: []].append((s, row))
                case .bool(let b):
                    var pair = bools[k] ?? (Bitmap(count: rows), Bitmap(count: rows))
                    if b { pair.0.insert(r) } else { pair.1.insert(r) }
                    bools[k] = pair
                case .stringArray(let a):
                    for s in Set(a) { arrays[k, default: [:]][s, default: []].append(row) }
                    arrayPresent[k, default: Bitmap(count: rows)].insert(r)
                case .null: break
                }
            }
        }
        for (k, list) in ints {
            let s = list.sorted { $0.0 < $1.0 }
            columns[k] = .ints(values: s.map(\.0), rows: s.map(\.1), present: Bitmap(count: rows, rows: s.map(\.1)))
        }
        for (k, list) in floats {
            let s = list.sorted { $0.0 < $1.0 }
            columns[k] = .floats(values: s.map(\.0), rows: s.map(\.1), present: Bitmap(count: rows, rows: s.map(\.1)))
        }
        for (k, list) in strings {
            let s = list.sorted { utf8Less($0.0, $1.0) }
            var postings: [String: [UInt32]] = [:]
            for (v, r) in s { postings[v, default: []].append(r) }
            columns[k] = .strings(values: s.map(\.0), rows: s.map(\.1), postings: postings, present: Bitmap(count: rows, rows: s.map(\.1)))
        }
        for (k, pair) in bools { columns[k] = .bools(trues: pair.0, falses: pair.1) }
        for (k, postings) in arrays { columns[k] = .arrays(postings: postings, present: arrayPresent[k]!) }
    }

    private func rowsBitmap(_ rows: some Sequence<UInt32>) -> Bitmap { Bitmap(count: self.rows, rows: rows) }

    private func present(_ k: String) -> Bitmap {
        switch columns[k] {
        case .ints(_, _, let p)?, .floats(_, _, let p)?, .strings(_, _, _, let p)?, .arrays(_, let p)?: return p
        case .bools(let t, let f)?: var b = t; b.formUnion(f); return b
        case nil: return Bitmap(count: rows)
        }
    }

    /// Rows matching `value` exactly (null: rows without the attribute).
    private func equal(_ k: String, _ value: AttributeValue) -> Bitmap {
        if value == .null { var b = present(k); b.invert(); return b }
        switch (columns[k], value) {
        case (.ints(let vs, let rs, _)?, .int(let i)): return rowsBitmap(rs[range(vs, i, i, true, true)])
        case (.floats(let vs, let rs, _)?, .float(let d)): return rowsBitmap(rs[range(vs, d, d, true, true)])
        case (.floats(let vs, let rs, _)?, .int(let i)): return rowsBitmap(rs[range(vs, Double(i), Double(i), true, true)])
        case (.strings(_, _, let p, _)?, .string(let s)): return rowsBitmap(p[s] ?? [])
        case (.bools(let t, let f)?, .bool(let b)): return b ? t : f
        case (.arrays(let p, _)?, .string(let s)): return rowsBitmap(p[s] ?? [])
        default: return Bitmap(count: rows)
        }
    }

    /// Index range of sorted `vs` within [lo, hi] (bounds inclusive or not; nil = open).
    private func range<T: Comparable>(_ vs: [T], _ lo: T?, _ hi: T?, _ loIn: Bool, _ hiIn: Bool) -> Range<Int> {
        range(vs, lo, hi, loIn, hiIn, less: <)
    }

    private func range<T>(_ vs: [T], _ lo: T?, _ hi: T?, _ loIn: Bool, _ hiIn: Bool, less: (T, T) -> Bool) -> Range<Int> {
        func bound(_ x: T, upper: Bool) -> Int {   // first index with vs[i] > x (upper) or >= x (lower)
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
        switch (columns[k], v) {
        case (.ints(let vs, let rs, _)?, .int(let i)):
            return rowsBitmap(rs[lo ? range(vs, i, nil, inclusive, false) : range(vs, nil, i, false, inclusive)])
        case (.floats(let vs, let rs, _)?, .float(let d)):
            return rowsBitmap(rs[lo ? range(vs, d, nil, inclusive, false) : range(vs, nil, d, false, inclusive)])
        case (.floats(let vs, let rs, _)?, .int(let i)):
            let d = Double(i)
            return rowsBitmap(rs[lo ? range(vs, d, nil, inclusive, false) : range(vs, nil, d, false, inclusive)])
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
            var b = Bitmap(count: rows)
            for v in vs { b.formUnion(equal(k, v)) }
            return b
        case .notIn(let k, let vs): var b = evaluate(.in(k, vs)); b.invert(); return b
        case .lt(let k, let v): return ordered(k, v, lo: false, inclusive: false)
        case .lte(let k, let v): return ordered(k, v, lo: false, inclusive: true)
        case .gt(let k, let v): return ordered(k, v, lo: true, inclusive: false)
        case .gte(let k, let v): return ordered(k, v, lo: true, inclusive: true)
        case .exists(let k): return present(k)
        case .contains(let k, let s):
            if case .arrays(let p, _)? = columns[k] { return rowsBitmap(p[s] ?? []) }
            return Bitmap(count: rows)
        case .prefix(let k, let p):
            guard case .strings(let vs, let rs, _, _)? = columns[k] else { return Bitmap(count: rows) }
            var i = range(vs, p, nil, true, false, less: utf8Less).lowerBound
            var b = Bitmap(count: rows)
            while i < vs.count && vs[i].utf8.starts(with: p.utf8) { b.insert(Int(rs[i])); i += 1 }
            return b
        }
    }
}

/// UTF-8 byte order, which is Unicode code point order.
@inline(__always) func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
