import Foundation
import Tidepool
import XCTest

/// The request-body parser against Foundation's, on valid, invalid and mutated documents.
final class JSONParserTests: XCTestCase {
    func parse(_ s: String) throws -> JSONValue { try JSONParser.parse(Array(s.utf8)) }

    func testValuesAndTypes() throws {
        XCTAssertEqual(
            try parse(#" {"a": [1, -2, 3.5, -0.25e2, 1E3, true, false, null], "b": {"c": "d"}} "#),
            .object([
                "a": .array([.int(1), .int(-2), .double(3.5), .double(-25), .double(1000), .bool(true), .bool(false), .null]),
                "b": .object(["c": .string("d")]),
            ]))
        XCTAssertEqual(try parse("9223372036854775807"), .int(.max))
        XCTAssertEqual(try parse("-9223372036854775808"), .int(.min))
        XCTAssertEqual(try parse("-9223372036854775809"), .double(-9223372036854775809))
        // Document ids use all of UInt64: integers above Int64.max stay exact.
        XCTAssertEqual(try parse("9223372036854775808"), .uint(1 << 63))
        XCTAssertEqual(try parse("18446744073709551615"), .uint(.max))
        XCTAssertEqual(try parse("18446744073709551616"), .double(18446744073709551616))
        XCTAssertEqual(try parse("100000000000000000000"), .double(1e20))
        XCTAssertEqual(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#), .string("a\"b\\c/d\n\té😀"))
        XCTAssertEqual(try parse(#""héllo""#), .string("héllo"))
        XCTAssertEqual(try parse("[]"), .array([]))
        XCTAssertEqual(try parse("{}"), .object([:]))
        XCTAssertEqual(try parse("-0.049109380692243576"), .double(-0.049109380692243576))
    }

    func testInvalidDocumentsNameTheOffset() {
        let bad = [
            "", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", "1e", "-", "+1", ".5", "\"abc", "\"\\x\"", "\"\\ud800\"",
            "\"\\udc00\"", "\"\u{01}\"", "tru", "nul", "[1 2]", "{\"a\" 1}", "{1:2}", "1 2", "{\"a\":1,\"a\":2}",
            "1e999", "[\"\\u12G4\"]", "NaN", "Infinity",
        ]
        for s in bad {
            XCTAssertThrowsError(try parse(s), "'\(s)' should be refused") { e in
                XCTAssertTrue("\(e)".contains("invalid JSON at byte"), "\(e)")
            }
        }
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xFF, 0x22])) { XCTAssertTrue("\($0)".contains("UTF-8"), "\($0)") }
        XCTAssertThrowsError(try parse("[1, 2, x]")) { XCTAssertTrue("\($0)".contains("byte 7"), "\($0)") }
    }

    func testDeepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try parse(deep)) { XCTAssertTrue("\($0)".contains("nested deeper"), "\($0)") }
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        XCTAssertNoThrow(try parse(ok))
    }

    /// Random documents and byte-level mutations of them: the parser never crashes, accepts
    /// exactly what Foundation accepts (apart from duplicate keys and deep nesting, which it
    /// and trailing commas, which it refuses on purpose), and agrees with Foundation on the values.
    func testAgreesWithFoundationOnRandomAndMutatedDocuments() throws {
        var rng = SplitMix64(seed: 2026)
        func randomValue(_ depth: Int) -> Any {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &rng) {
            case 0: return Int.random(in: -1_000_000...1_000_000, using: &rng)
            case 1: return Double.random(in: -1e6...1e6, using: &rng)
            case 2: return ["abc", "é", "a\"b", "x\\y", "tab\t", "😀", ""][Int.random(in: 0..<7, using: &rng)]
            case 3: return Bool.random(using: &rng)
            case 4: return NSNull()
            case 5: return (0..<Int.random(in: 0..<5, using: &rng)).map { _ in randomValue(depth + 1) }
            default:
                var o: [String: Any] = [:]
                for k in 0..<Int.random(in: 0..<5, using: &rng) { o["k\(k)"] = randomValue(depth + 1) }
                return o
            }
        }
        func same(_ a: JSONValue, _ b: Any) -> Bool {
            switch a {
            case .null: return b is NSNull
            case .bool(let x): return (b as? Bool) == x
            case .int(let x): return (b as? NSNumber)?.doubleValue == Double(x)
            case .uint(let x): return (b as? NSNumber)?.doubleValue == Double(x)
            case .double(let x): return ((b as? NSNumber)?.doubleValue).map { abs($0 - x) <= 1e-9 * max(1, abs(x)) } ?? false
            case .string(let x): return (b as? String) == x
            case .array(let xs):
                guard let ys = b as? [Any], ys.count == xs.count else { return false }
                return zip(xs, ys).allSatisfy { same($0, $1) }
            case .object(let o):
                guard let p = b as? [String: Any], p.count == o.count else { return false }
                return o.allSatisfy { k, v in p[k].map { same(v, $0) } ?? false }
            }
        }
        var accepted = 0, refused = 0
        for n in 0..<3000 {
            let doc = ["v": randomValue(0)]
            var bytes = [UInt8](try JSONSerialization.data(withJSONObject: doc))
            if n % 2 == 1 {
                // Mutate a few bytes: replace, delete or insert JSON-significant characters.
                let alphabet = Array("{}[],:\"\\0123456789.eE+-tfnul \t\n".utf8)
                for _ in 0..<Int.random(in: 1...3, using: &rng) where !bytes.isEmpty {
                    let at = Int.random(in: 0..<bytes.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: bytes[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
                    case 1: bytes.remove(at: at)
                    default: bytes.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)], at: at)
                    }
                }
            }
            let ours = try? JSONParser.parse(bytes)
            let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            if let ours {
                accepted += 1
                XCTAssertNotNil(theirs, "accepted what Foundation refuses: \(String(decoding: bytes, as: UTF8.self))")
                if let theirs { XCTAssertTrue(same(ours, theirs), "different values for \(String(decoding: bytes, as: UTF8.self))") }
            } else {
                refused += 1
                if theirs != nil {
                    // Foundation keeps the last of duplicate keys and accepts trailing commas;
                    // RFC 8259 allows neither, and they are the only differences allowed.
                    let text = String(decoding: bytes, as: UTF8.self)
                    if text.contains(",}") || text.contains(",]") { continue }
                    XCTAssertThrowsError(try JSONParser.parse(bytes)) { e in
                        XCTAssertTrue(
                            "\(e)".contains("duplicate key") || "\(e)".contains("out of range"), "refused valid JSON \(text): \(e)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(accepted, 1500)
        XCTAssertGreaterThan(refused, 300)
    }
}
