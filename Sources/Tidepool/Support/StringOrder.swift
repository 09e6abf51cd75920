/// UTF-8 byte order, which is Unicode code point order: the order string ids are scanned in
/// and string attribute columns are sorted in (locale-free, the same on every platform).
@inline(__always) func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
