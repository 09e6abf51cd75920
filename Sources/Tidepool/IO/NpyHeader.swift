/// The header of a NumPy `.npy` file: a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (100, 384), }`, parsed strictly (each key
/// once, values of the expected kinds) so that a value containing another key's text, or a
/// shape whose product overflows, is an error and not a misreading.
struct NpyHeader: Equatable {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    /// What went wrong, and at which character of the header.
    struct Failure: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "\(reason) at header character \(offset)" }
    }

    init(descr: String, fortranOrder: Bool, shape: [Int]) {
        self.descr = descr
        self.fortranOrder = fortranOrder
        self.shape = shape
    }

    init(parsing text: String) throws(Failure) {
        var p = Parser(chars: Array(text.utf8))
        var descr: String?, fortran: Bool?, shape: [Int]?
        p.skipSpace()
        try p.expect(UInt8(ascii: "{"))
        while true {
            p.skipSpace()
            if p.peek == UInt8(ascii: "}") { break }
            let key = try p.quoted()
            p.skipSpace()
            try p.expect(UInt8(ascii: ":"))
            p.skipSpace()
            switch key {
            case "descr" where descr == nil: descr = try p.quoted()
            case "fortran_order" where fortran == nil: fortran = try p.boolean()
            case "shape" where shape == nil: shape = try p.tuple()
            default: throw p.fail("unexpected or repeated key '\(key)'")
            }
            p.skipSpace()
            if p.peek == UInt8(ascii: ",") {
                p.i += 1
            } else {
                p.skipSpace(); if p.peek != UInt8(ascii: "}") { throw p.fail("expected ',' or '}'") }
            }
        }
        p.i += 1
        guard let descr, let fortran, let shape else { throw p.fail("the header needs 'descr', 'fortran_order' and 'shape'") }
        self.descr = descr
        fortranOrder = fortran
        self.shape = shape
    }

    /// Elements the shape holds, or nil when the product overflows.
    var elementCount: Int? {
        var n = 1
        for d in shape {
            let (m, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = m
        }
        return n
    }

    private struct Parser {
        let chars: [UInt8]
        var i = 0

        var peek: UInt8? { i < chars.count ? chars[i] : nil }

        func fail(_ reason: String) -> Failure { Failure(offset: i, reason: reason) }

        mutating func skipSpace() { while let c = peek, c == 0x20 || c == 0x0A || c == 0x09 { i += 1 } }

        mutating func expect(_ c: UInt8) throws(Failure) {
            guard peek == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
            i += 1
        }

        mutating func quoted() throws(Failure) -> String {
            guard let q = peek, q == UInt8(ascii: "'") || q == UInt8(ascii: "\"") else { throw fail("expected a quoted string") }
            i += 1
            let start = i
            while let c = peek, c != q {
                guard c != UInt8(ascii: "\\") else { throw fail("escapes are not supported in header strings") }
                i += 1
            }
            guard peek == q else { throw fail("unterminated string") }
            defer { i += 1 }
            return String(decoding: chars[start..<i], as: UTF8.self)
        }

        mutating func boolean() throws(Failure) -> Bool {
            for (word, value) in [("True", true), ("False", false)] where chars[i...].starts(with: word.utf8) {
                i += word.utf8.count
                return value
            }
            throw fail("expected True or False")
        }

        /// `(a, b, ...)` of non-negative integers; `(n,)` for one dimension.
        mutating func tuple() throws(Failure) -> [Int] {
            try expect(UInt8(ascii: "("))
            var out: [Int] = []
            while true {
                skipSpace()
                if peek == UInt8(ascii: ")") { break }
                let start = i
                var v = 0
                while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                    let (m, o1) = v.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
                    guard !o1, !o2 else { throw fail("shape dimension too large") }
                    v = s
                    i += 1
                }
                guard i > start else { throw fail("expected a non-negative integer in the shape") }
                guard out.count < 32 else { throw fail("more than 32 dimensions") }
                out.append(v)
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1 } else if peek != UInt8(ascii: ")") { throw fail("expected ',' or ')' in the shape") }
            }
            i += 1
            return out
        }
    }
}
