import Foundation
import XCTest

@testable import Tidepool

/// A fresh directory under the system's temporary folder, removed by `cleanup`.
final class TempDir {
    let path: String
    init(_ name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "tidepool-test-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.removeItem(atPath: path)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Deterministic random vectors.
func randomVectors(_ n: Int, _ dim: Int, seed: UInt64) -> [[Float]] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in (0..<dim).map { _ in Float(Double(rng.next() >> 11) / Double(1 << 53)) * 2 - 1 } }
}

/// Documents with the ids in `ids` (as unsigned integers) and the matching rows of
/// `randomVectors(ids.upperBound, dimension, seed:)`.
func randomDocuments(_ ids: Range<Int>, dimension: Int = 8, seed: UInt64) -> [Document] {
    let v = randomVectors(ids.upperBound, dimension, seed: seed)
    return ids.map { Document(id: .uint(UInt64($0)), vector: v[$0]) }
}

/// Clustered vectors, closer to real embeddings than uniform noise.
func clusteredVectors(_ n: Int, _ dim: Int, clusters: Int, seed: UInt64) -> [[Float]] {
    var rng = SplitMix64(seed: seed)
    func gauss() -> Float {
        let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(rng.next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
    let centres = (0..<clusters).map { _ in (0..<dim).map { _ in gauss() } }
    return (0..<n).map { _ in
        let c = centres[Int(rng.next() % UInt64(clusters))]
        return c.map { $0 + 0.35 * gauss() }
    }
}

/// Brute-force reference distance in Double, for the engine's metric semantics (smaller is closer).
func referenceDistance(_ a: [Float], _ b: [Float], _ metric: Metric) -> Double {
    switch metric {
    case .l2: return zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    case .innerProduct: return -zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    case .cosine:
        let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return 1 - zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / (na * nb)
    }
}

/// Exact top-k ids by brute force, independent of the engine.
func bruteForce(_ base: [[Float]], _ q: [Float], k: Int, metric: Metric) -> [Int] {
    var scored: [(index: Int, dist: Double)] = []
    for i in base.indices { scored.append((i, referenceDistance(base[i], q, metric))) }
    scored.sort { a, b in a.dist != b.dist ? a.dist < b.dist : a.index < b.index }
    return scored.prefix(k).map { $0.index }
}

/// Path of the `tidepool` executable built beside the test bundle.
func tidepoolBinary() throws -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    if dir.lastPathComponent == "MacOS" { dir = dir.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }
    let path = dir.appendingPathComponent("tidepool").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw XCTSkip("the tidepool executable is not built at \(path); run `swift build` first")
    }
    return path
}

/// Runs the CLI to completion and returns (status, stdout, stderr).
@discardableResult
func runTidepool(_ args: [String]) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try tidepoolBinary())
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

let sharedDataset = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets/pypi-minilm-100k").path

/// A file of the shared real-embedding set.
enum SharedFile: String {
    case base = "base.fvecs"
    case queries = "query.fvecs"
}

/// Each shared file read at most once per test run (the base is 150 MB); nil when it cannot be read.
private let sharedBase = try? VectorFile.readFvecs(sharedDataset + "/" + SharedFile.base.rawValue)
private let sharedQueries = try? VectorFile.readFvecs(sharedDataset + "/" + SharedFile.queries.rawValue)

/// The first `count` vectors of `file` in the shared real-embedding set. Skips the test where
/// the set is absent, except under CI, where that is a failure.
func sharedEmbeddings(_ file: SharedFile, count: Int) throws -> [[Float]] {
    let path = sharedDataset + "/" + file.rawValue
    guard FileManager.default.fileExists(atPath: path) else {
        if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("shared dataset missing at \(path)") }
        throw XCTSkip("shared dataset not present at \(path)")
    }
    let all = try XCTUnwrap(file == .base ? sharedBase : sharedQueries, "\(path) could not be read")
    return (0..<min(count, all.rows)).map { all.row($0) }
}

/// Asserts that `Database.verify` reports exactly one problem, naming `file` and segment section `section`.
func assertVerifyReportsOneDamagedSection(
    _ dir: String, file: String, section: Int,
    sourceFile: StaticString = #filePath, line: UInt = #line
) {
    let problems = Database.verify(path: dir)
    XCTAssertEqual(problems.count, 1, "\(problems)", file: sourceFile, line: line)
    XCTAssertTrue(
        problems.first?.contains(file) == true && problems.first?.contains("section \(section)") == true,
        "\(problems)", file: sourceFile, line: line)
}

/// Each query's exact top-`k` ids (row numbers of `base`), for recall.
func exactTopK(_ base: [[Float]], _ queries: [[Float]], k: Int = 10, metric: Metric) -> [Set<DocumentID>] {
    queries.map { Set(bruteForce(base, $0, k: k, metric: metric).map { DocumentID.uint(UInt64($0)) }) }
}

/// recall@k of `c`'s searches against `truth` from ``exactTopK(_:_:k:metric:)``.
func recall(
    _ c: Collection, _ queries: [[Float]], _ truth: [Set<DocumentID>], k: Int = 10,
    options: SearchOptions = SearchOptions()
) throws -> Double {
    var hits = 0
    for (q, t) in zip(queries, truth) { hits += try c.search(vector: q, k: k, options: options).filter { t.contains($0.id) }.count }
    return Double(hits) / Double(k * queries.count)
}

/// Flips one byte of a collection's only segment file, at `offset(fileSize)`, and returns the
/// file's name, for corruption tests.
@discardableResult
func flipSegmentByte(_ dir: String, collection: String, at offset: (Int) -> Int) throws -> String {
    let segDir = dir + "/collections/\(collection)/segments"
    let file = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: segDir).first { $0.hasSuffix(".tps") })
    var bytes = try Data(contentsOf: URL(fileURLWithPath: segDir + "/" + file))
    bytes[offset(bytes.count)] ^= 0xFF
    try bytes.write(to: URL(fileURLWithPath: segDir + "/" + file))
    return file
}

/// A value shared between a test and its threads, read and written under a lock.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func get() -> T { lock.withLock { value } }
    func set(_ v: T) { lock.withLock { value = v } }
}

/// A fresh `s3://` location in the real S3-compatible store the tests use (SeaweedFS, started by
/// `.ci/run` or `scripts/seaweedfs.sh start`), with options whose cache is `cache`. Skips the
/// test when no store is configured, and fails it instead where CI requires one
/// (`TIDEPOOL_REQUIRE_S3`). `what` names what goes untested, for the message.
func liveObjectStorage(cache: String, prefix: String, what: String) throws -> (url: String, options: ObjectStorageOptions) {
    let env = ProcessInfo.processInfo.environment
    guard let endpoint = env["TIDEPOOL_TEST_S3_ENDPOINT"] else {
        let message =
            "NO OBJECT STORE: TIDEPOOL_TEST_S3_ENDPOINT is not set, so \(what) was not tested "
            + "(start one with scripts/seaweedfs.sh start and export what it prints)"
        print("warning: " + message)
        if env["TIDEPOOL_REQUIRE_S3"] == "1" { XCTFail(message) }
        throw XCTSkip(message)
    }
    let bucket = env["TIDEPOOL_TEST_S3_BUCKET"] ?? "tidepool-test"
    let url = "s3://\(bucket)/\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    return (url, ObjectStorageOptions(endpoint: endpoint, cacheDirectory: cache, cacheBytes: 1 << 30))
}
