import Foundation

/// Binary encoding of ids and attribute maps, shared by the WAL and segments.
enum RecordCodec {
    static let maxIDBytes = 1024
    static let maxKeyBytes = 256
    /// Objects inside objects: at most this many levels below the attribute itself.
    static let maxObjectDepth = 8

    static func encode(_ id: DocumentID, into w: inout ByteWriter) {
        switch id {
        case .uint(let v): w.u8(0); w.u64(v)
        case .string(let s): w.u8(1); w.string(s)
        }
    }

    static func decodeID(_ r: inout ByteReader) throws -> DocumentID {
        switch try r.u8("id tag") {
        case 0: return .uint(try r.u64("id"))
        case 1: return .string(try r.string("id"))
        case let t: throw r.fail("unknown id tag \(t)")
        }
    }

    static func encode(_ attrs: [String: AttributeValue], into w: inout ByteWriter) {
        w.u32(UInt32(attrs.count))
        // Sorted keys: identical documents encode to identical bytes.
        for key in attrs.keys.sorted() {
            w.string(key)
            switch attrs[key]! {
            case .string(let s): w.u8(0); w.string(s)
            case .int(let v): w.u8(1); w.i64(v)
            case .float(let v): w.u8(2); w.f64(v)
            case .bool(let b): w.u8(3); w.u8(b ? 1 : 0)
            case .stringArray(let a): w.u8(4); w.u32(UInt32(a.count)); for s in a { w.string(s) }
            case .null: w.u8(5)
            case .intArray(let a): w.u8(6); w.u32(UInt32(a.count)); for x in a { w.i64(x) }
            case .floatArray(let a): w.u8(7); w.u32(UInt32(a.count)); for x in a { w.f64(x) }
            case .object(let o): w.u8(8); encode(o, into: &w)
            }
        }
    }

    static func decodeAttributes(_ r: inout ByteReader, depth: Int = 0) throws -> [String: AttributeValue] {
        let n = Int(try r.u32("attribute count"))
        guard n <= r.remaining else { throw r.fail("attribute count \(n) exceeds the record") }
        var out: [String: AttributeValue] = [:]
        out.reserveCapacity(n)
        for _ in 0..<n {
            let key = try r.string("attribute name")
            switch try r.u8("attribute tag") {
            case 0: out[key] = .string(try r.string("attribute value"))
            case 1: out[key] = .int(try r.i64())
            case 2: out[key] = .float(try r.f64())
            case 3: out[key] = .bool(try r.u8() != 0)
            case 4:
                let c = Int(try r.u32("array length"))
                guard c <= r.remaining else { throw r.fail("array length \(c) exceeds the record") }
                var a: [String] = []
                a.reserveCapacity(c)
                for _ in 0..<c { a.append(try r.string("array element")) }
                out[key] = .stringArray(a)
            case 5: out[key] = .null
            case 6: out[key] = .intArray(try decodeNumbers(&r) { try $0.i64() })
            case 7: out[key] = .floatArray(try decodeNumbers(&r) { try $0.f64() })
            case 8: out[key] = .object(try decodeObject(&r, depth: depth))
            case let t: throw r.fail("unknown attribute tag \(t)")
            }
        }
        return out
    }

    /// The value of one attribute in an encoded attribute map, skipping the others without
    /// decoding them; nil when absent.
    static func decodeAttribute(_ r: inout ByteReader, key: [UInt8]) throws -> AttributeValue? {
        if r.remaining == 0 { return nil }
        let n = Int(try r.u32("attribute count"))
        for _ in 0..<n {
            let klen = Int(try r.u32("attribute name length"))
            let name = try r.bytes(klen, "attribute name")
            let match = name.elementsEqual(key)
            let tag = try r.u8("attribute tag")
            func skipString() throws { _ = try r.bytes(Int(try r.u32("string length")), "string") }
            switch tag {
            case 0:
                if match { return .string(try r.string("attribute value")) }
                try skipString()
            case 1: let v = try r.i64(); if match { return .int(v) }
            case 2: let v = try r.f64(); if match { return .float(v) }
            case 3: let v = try r.u8(); if match { return .bool(v != 0) }
            case 4:
                let c = Int(try r.u32("array length"))
                guard c <= r.remaining else { throw r.fail("array length \(c) exceeds the record") }
                if match { return .stringArray(try (0..<c).map { _ in try r.string("array element") }) }
                for _ in 0..<c { try skipString() }
            case 5: if match { return .null }
            case 6:
                let a = try decodeNumbers(&r) { try $0.i64() }
                if match { return .intArray(a) }
            case 7:
                let a = try decodeNumbers(&r) { try $0.f64() }
                if match { return .floatArray(a) }
            case 8:
                let o = try decodeObject(&r, depth: 0)
                if match { return .object(o) }
            case let t: throw r.fail("unknown attribute tag \(t)")
            }
        }
        return nil
    }

    /// An object value: an attribute map of its own, at most `maxObjectDepth` levels deep.
    private static func decodeObject(_ r: inout ByteReader, depth: Int) throws -> [String: AttributeValue] {
        guard depth < maxObjectDepth else { throw r.fail("objects nested deeper than \(maxObjectDepth) levels") }
        return try decodeAttributes(&r, depth: depth + 1)
    }

    /// A numeric array: u32 count, then 8 bytes a number.
    private static func decodeNumbers<T>(_ r: inout ByteReader, _ one: (inout ByteReader) throws -> T) throws -> [T] {
        let c = Int(try r.u32("array length"))
        guard c <= r.remaining / 8 else { throw r.fail("array length \(c) exceeds the record") }
        var a: [T] = []
        a.reserveCapacity(c)
        for _ in 0..<c { a.append(try one(&r)) }
        return a
    }

    /// Checks an id and attributes for limits a reader would refuse.
    static func validate(_ doc: Document, collection: String) throws {
        if case .string(let s) = doc.id {
            if s.isEmpty || s.utf8.count > maxIDBytes {
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': string id must be 1...\(maxIDBytes) UTF-8 bytes")
            }
        }
        try validate(doc.attributes, doc: doc.id, collection: collection, depth: 0)
    }

    private static func validate(_ attrs: [String: AttributeValue], doc: DocumentID, collection: String, depth: Int) throws {
        guard depth <= maxObjectDepth else {
            throw TidepoolError.invalidArgument(
                "collection '\(collection)': document \(doc) has objects nested deeper than \(maxObjectDepth) levels")
        }
        for (k, v) in attrs {
            if k.isEmpty || k.utf8.count > maxKeyBytes {
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': attribute name must be 1...\(maxKeyBytes) bytes, got '\(k.prefix(40))'")
            }
            let finite: Bool
            switch v {
            case .float(let f): finite = f.isFinite
            case .floatArray(let a): finite = a.allSatisfy(\.isFinite)
            case .object(let o):
                try validate(o, doc: doc, collection: collection, depth: depth + 1)
                finite = true
            default: finite = true
            }
            if !finite {
                throw TidepoolError.invalidArgument(
                    "collection '\(collection)': attribute '\(k)' of document \(doc) is not finite")
            }
        }
    }
}
