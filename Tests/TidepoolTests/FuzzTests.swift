import Foundation
import XCTest

@testable import Tidepool

/// Seeded mutation fuzzing of everything that parses input: the files of a database (WAL
/// frames, segments, the manifest), the filter language, `.npy`/`.fvecs`/`.ivecs` files. The
/// seed corpus is the committed format fixture (every section kind) and generated documents.
/// Each case must either work or fail with a `TidepoolError`: a trap kills the test process.
/// A damaged file that `verify` calls sound must answer exactly as the original did.
///
/// CI runs a few hundred cases per target; `scripts/fuzz.sh` runs many more
/// (`TIDEPOOL_FUZZ_ITERATIONS`, `TIDEPOOL_FUZZ_SEED`).
final class FuzzTests: XCTestCase {
    static let iterations = Int(ProcessInfo.processInfo.environment["TIDEPOOL_FUZZ_ITERATIONS"] ?? "") ?? 100
    static let seed = UInt64(ProcessInfo.processInfo.environment["TIDEPOOL_FUZZ_SEED"] ?? "") ?? 20_261_201

    /// The fixture database's files, by storage name.
    static let corpus: [String: [UInt8]] = {
        let root = FormatFixtureTests.fixture + "/db"
        var out: [String: [UInt8]] = [:]
        let walker = FileManager.default.enumerator(atPath: root)
        while let rel = walker?.nextObject() as? String {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
            out[rel] = [UInt8](FileManager.default.contents(atPath: root + "/" + rel) ?? Data())
        }
        return out
    }()

    func answers(_ files: [String: [UInt8]]) throws -> Data {
        let db = try Database(storage: MemoryStorage(files: files), path: "memory:fuzz", options: DatabaseOptions(readOnly: true))
        defer { try? db.close() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(try FixtureAnswers.record(db))
    }

    /// Opens a damaged store read-only and read-write, and asks every collection everything.
    func exercise(_ files: [String: [UInt8]]) {
        _ = Database.verify(storage: MemoryStorage(files: files), path: "memory:fuzz")
        for readOnly in [true, false] {
            guard
                let db = try? Database(
                    storage: MemoryStorage(files: files), path: "memory:fuzz", options: DatabaseOptions(readOnly: readOnly))
            else { continue }
            for name in db.collectionNames {
                guard let c = try? db.collection(name) else { continue }
                let q = [Float](repeating: 0.1, count: c.dimension)
                _ = try? c.search(vector: q, k: 10)
                _ = try? c.search(vector: q, k: 10, options: SearchOptions(exact: true))
                _ = try? c.search(vector: q, k: 5, options: SearchOptions(filter: .lt("i", .int(500))))
                _ = try? c.scan(limit: 50)
                _ = try? c.count(filter: .exists("flag"))
                _ = try? c.get(ids: (0..<20).map { .uint(UInt64($0)) })
                _ = try? c.textSearch("alpha beta", k: 5)
                _ = c.info()
            }
            if !readOnly { _ = try? db.collectionNames.first.map { try db.collection($0).flush() } }
            try? db.close()
        }
    }

    func testDamagedDatabaseFilesAreReportedNeverTrapOrLie() throws {
        let corpus = Self.corpus
        XCTAssertGreaterThan(corpus.count, 10)
        let baseline = try answers(corpus)
        var rng = SplitMix64(seed: Self.seed)
        let names = corpus.keys.sorted()
        var detected = 0, sound = 0
        for _ in 0..<Self.iterations {
            let name = names[Int(rng.next() % UInt64(names.count))]
            var files = corpus
            let before = files[name]!
            files[name] = Mutator.mutate(before, &rng)
            if files[name] == before { continue }
            exercise(files)
            let problems = Database.verify(storage: MemoryStorage(files: files), path: "memory:fuzz")
            if !problems.isEmpty {
                detected += 1
                continue
            }
            sound += 1
            // WAL damage verify accepts is a torn tail, which loses only unacknowledged bytes.
            guard !name.hasSuffix(".wal") else { continue }
            XCTAssertEqual(try? answers(files), baseline, "\(name) was changed, verify found nothing, and the answers differ")
        }
        XCTAssertGreaterThan(detected, Self.iterations / 2, "most damage must be reported")
        print("fuzz: \(detected) damaged stores reported, \(sound) judged sound")
    }

    func testMutatedFiltersParseOrFailCleanly() throws {
        var rng = SplitMix64(seed: Self.seed &+ 1)
        let seeds = [
            #"{"and":[{"i":{"lt":2000}},{"or":[{"group":"g3"},{"flag":{"exists":true}}]}]}"#,
            #"{"group":{"in":["g1","g2","g3","g4","g5","g6","g7","g8","g9","g10"]}}"#,
            #"{"not":{"tags":{"contains":"x"}}}"#, #"{"name":{"prefix":"ab"},"i":{"gte":1,"lte":9}}"#,
            #"{"or":[{"i":{"ne":null}},{"f":{"gt":1.5}},{"b":true}]}"#,
        ]
        let schema = AttributeSchema(types: [
            "i": .int, "group": .string, "flag": .bool, "tags": .stringArray, "name": .string, "f": .float, "b": .bool,
        ])
        let attrs: [String: AttributeValue] = ["i": .int(5), "group": .string("g3"), "tags": .stringArray(["x"]), "name": .string("abc")]
        var parsed = 0
        for n in 0..<(Self.iterations * 20) {
            var bytes = Array(seeds[n % seeds.count].utf8)
            if n >= seeds.count { bytes = Mutator.mutate(bytes, &rng) }
            guard let f = try? Filter(json: Data(bytes)) else { continue }
            parsed += 1
            if let v = try? f.validated(against: schema, collection: "fuzz") {
                XCTAssertEqual(FilterEvaluator(v).matches(attrs), v.matches(attrs), String(decoding: bytes, as: UTF8.self))
            }
        }
        XCTAssertGreaterThan(parsed, seeds.count)
    }

    func testMutatedVectorFilesReadOrFailCleanly() throws {
        let dir = TempDir()
        var rng = SplitMix64(seed: Self.seed &+ 2)
        let values = randomVectors(5, 3, seed: 3).flatMap { $0 }
        let fvecs = dir.path + "/seed.fvecs"
        try VectorFile.writeFvecs(VectorMatrix(rows: 5, dimension: 3, values: values), to: fvecs)
        var npy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }".utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0A)
        npy += [UInt8(header.count), 0] + header
        values.withUnsafeBytes { npy += $0 }
        let seeds: [(String, [UInt8])] = [
            ("npy", npy), ("fvecs", [UInt8](FileManager.default.contents(atPath: fvecs)!)),
            ("ivecs", [1, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]),
        ]
        for n in 0..<(Self.iterations * 4) {
            let (ext, seed) = seeds[n % seeds.count]
            let path = dir.path + "/case.\(ext)"
            try Data(Mutator.mutate(seed, &rng)).write(to: URL(fileURLWithPath: path))
            if ext == "ivecs" { _ = try? VectorFile.readIvecs(path) } else { _ = try? VectorFile.readVectors(path) }
        }
        XCTAssertEqual(try VectorFile.readVectors(dir.path + "/seed.fvecs").values, values)
    }
}

/// Byte-level mutations that find parser bugs: bit flips, random bytes, extreme integers over
/// length and count fields, truncation, duplicated and deleted ranges.
enum Mutator {
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + Int(rng.next() % 3)) {
            guard !b.isEmpty else { return [UInt8(truncatingIfNeeded: rng.next())] }
            let at = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 7 {
            case 0: b[at] ^= UInt8(1) << (rng.next() % 8)
            case 1: b[at] = UInt8(truncatingIfNeeded: rng.next())
            case 2:
                // An extreme little-endian integer, where sizes and counts live.
                let extremes: [UInt64] = [0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max]
                var v = extremes[Int(rng.next() % UInt64(extremes.count))]
                let width = [2, 4, 8][Int(rng.next() % 3)]
                for i in 0..<width where at + i < b.count {
                    b[at + i] = UInt8(truncatingIfNeeded: v)
                    v >>= 8
                }
            case 3: b.removeSubrange(at..<b.count)
            case 4: b.removeSubrange(at..<min(b.count, at + 1 + Int(rng.next() % 64)))
            case 5: b.insert(contentsOf: b[at..<min(b.count, at + 1 + Int(rng.next() % 64))], at: Int(rng.next() % UInt64(b.count)))
            default:
                let json = Array("{}[],:\"\\0123456789.eE+-tfnul ".utf8)
                b[at] = json[Int(rng.next() % UInt64(json.count))]
            }
        }
        return b
    }
}
