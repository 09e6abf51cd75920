import Foundation
import XCTest

/// `tidepool serve` killed with SIGKILL while two clients upsert and delete: after each kill
/// `tidepool verify` finds the directory sound, and after a restart every acknowledged write is
/// there with its vector and no acknowledged delete comes back. An operation in flight at the
/// kill may or may not have happened, but never half (a batch is one log record).
final class ServeCrashTests: XCTestCase, @unchecked Sendable {
    static let kills = Int(ProcessInfo.processInfo.environment["TIDEPOOL_CRASH_SERVE_KILLS"] ?? "") ?? 3
    static let idsPerClient = 300
    let process = ServeHarness()

    /// What one client knows: per id the op of its acknowledged live version (nil: deleted or
    /// never written), and the operation it had sent when the server died.
    final class ClientModel: @unchecked Sendable {
        var acked: [Int: Int] = [:]
        var inFlight: (op: Int, upsert: Bool, ids: [Int])?
        var acknowledged = 0
    }

    /// The vector an operation writes for an id: every component exact in float32.
    static func vector(_ id: Int, _ op: Int) -> [Double] { [Double(id), Double(op / 4096), Double(op % 4096), -1] }

    func testKilledServerKeepsEveryAcknowledgedWrite() throws {
        let dir = NSTemporaryDirectory() + "tidepool-serve-crash-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try drill(
            label: "serve crash test", serve: ["serve", "--data", dir], check: ["serve", "--data", dir], verify: ["verify", "--data", dir],
            environment: [:], port: 27000 + Int(getpid() % 2000))
    }

    /// The same on object storage (SeaweedFS): the writer is killed at any moment (in a WAL
    /// object's PUT, a segment upload, a manifest commit) and restarted from an empty cache; every
    /// acknowledged write is then seen through a fresh read-only query node, and `verify` (through
    /// another empty cache) finds the store sound.
    func testKilledWriterOnObjectStorageKeepsEveryAcknowledgedWrite() throws {
        let (bucket, s3) = try process.objectStore()
        let url = "s3://\(bucket)/crash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let caches = NSTemporaryDirectory() + "tidepool-serve-crash-caches-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: caches) }
        let fresh = { (name: String) in caches + "/" + name + "-" + String(UInt32.random(in: 0...UInt32.max)) }
        try drill(
            label: "object storage crash test", serve: ["serve", "--storage", url, "--cache-dir", fresh("writer")],
            check: ["serve", "--storage", url, "--cache-dir", fresh("query"), "--read-only"],
            verify: ["verify", "--storage", url, "--cache-dir", fresh("verify")], environment: s3,
            port: 29000 + Int(getpid() % 2000), freshCaches: fresh)
    }

    /// Kills `serve` `kills` times under two writing clients; after each kill runs `verify` and
    /// checks every id through a `check` server. With `freshCaches`, every start gets a new
    /// `--cache-dir` (the argument after `--cache-dir` is replaced).
    func drill(
        label: String, serve: [String], check: [String], verify verifyArguments: [String], environment: [String: String], port: Int,
        freshCaches: ((String) -> String)? = nil
    ) throws {
        func withFreshCache(_ args: [String], _ name: String) -> [String] {
            guard let fresh = freshCaches, let i = args.firstIndex(of: "--cache-dir"), i + 1 < args.count else { return args }
            var a = args
            a[i + 1] = fresh(name)
            return a
        }
        let clients = [ClientModel(), ClientModel()]
        var op = 0
        var rng = SplitMix(seed: 99)
        for kill in 0..<Self.kills {
            let server = try process.start(arguments: withFreshCache(serve, "writer"), port: port, environment: environment)
            defer { if server.isRunning { Glibc.kill(server.processIdentifier, SIGKILL) } }
            if kill == 0 {
                XCTAssertEqual(try process.request(port, "POST", "/v1/collections", #"{"name":"c","dimension":4,"metric":"l2"}"#).0, 201)
            }
            let threads = clients.enumerated().map { (index, model) -> Thread in
                let firstOp = op + index * 1_000_000
                return Thread {
                    var local = SplitMix(seed: UInt64(firstOp + 1))
                    for o in firstOp..<(firstOp + 1_000_000) {
                        let upsert = local.next() % 4 != 0
                        let ids = (0..<(upsert ? 5 : 3)).map { _ in index + 2 * Int(local.next() % UInt64(Self.idsPerClient)) }
                        model.inFlight = (o, upsert, ids)
                        let body =
                            upsert
                            ? "{\"documents\":[" + ids.map { "{\"id\":\($0),\"vector\":\(Self.vector($0, o))}" }.joined(separator: ",")
                                + "]}"
                            : "{\"ids\":\(ids)}"
                        let path = upsert ? "/v1/collections/c/upsert" : "/v1/collections/c/delete"
                        guard let (s, _) = try? self.process.request(port, "POST", path, body), s == 200 else { return }
                        for id in ids { model.acked[id] = upsert ? o : nil }
                        model.inFlight = nil
                        model.acknowledged += 1
                    }
                }
            }
            threads.forEach { $0.start() }
            Thread.sleep(forTimeInterval: 0.3 + Double(rng.next() % 900) / 1000)
            Glibc.kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
            while threads.contains(where: { $0.isExecuting }) { Thread.sleep(forTimeInterval: 0.01) }
            op += 10_000_000

            let verify = Process()
            verify.executableURL = URL(fileURLWithPath: try process.binary())
            verify.arguments = withFreshCache(verifyArguments, "verify")
            verify.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
            verify.standardOutput = FileHandle.nullDevice
            verify.standardError = FileHandle.nullDevice
            try verify.run()
            verify.waitUntilExit()
            XCTAssertEqual(verify.terminationStatus, 0, "kill \(kill): verify found damage")

            let check = try process.start(arguments: withFreshCache(check, "query"), port: port, environment: environment)
            defer {
                check.terminate()
                check.waitUntilExit()
            }
            let all = (0..<(2 * Self.idsPerClient)).map(String.init).joined(separator: ",")
            let (s, got) = try process.request(port, "POST", "/v1/collections/c/get", "{\"ids\":[\(all)]}")
            XCTAssertEqual(s, 200, "kill \(kill): \(got)")
            var stored: [Int: [Double]] = [:]
            for d in got["documents"] as? [[String: Any]] ?? [] {
                if let id = d["id"] as? Int, let v = d["vector"] as? [Double] { stored[id] = v }
            }
            for (index, model) in clients.enumerated() {
                for id in stride(from: index, to: 2 * Self.idsPerClient, by: 2) {
                    let acked = model.acked[id].map { Self.vector(id, $0) }
                    if let f = model.inFlight, f.ids.contains(id) {
                        let flying = f.upsert ? Self.vector(id, f.op) : nil
                        XCTAssertTrue(
                            stored[id] == acked || stored[id] == flying, "kill \(kill): id \(id) is \(String(describing: stored[id]))")
                        if stored[id] == flying { model.acked[id] = f.upsert ? f.op : nil }
                    } else {
                        XCTAssertEqual(stored[id], acked, "kill \(kill): id \(id) lost, stale or resurrected")
                    }
                }
                model.inFlight = nil
            }
        }
        let acknowledged = clients.reduce(0) { $0 + $1.acknowledged }
        print("\(label): \(Self.kills) kills, \(acknowledged) acknowledged upserts and deletes, all present after each")
        XCTAssertGreaterThan(acknowledged, Self.kills * 5)
    }
}

/// SplitMix64, for deterministic choices in the test process.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
