import Foundation
import Tidepool
import XCTest

/// A child process writes under `always` sync with flushes and compactions going on; it is
/// killed with SIGKILL at random moments. After every kill the database must reopen, verify,
/// hold every acknowledged write with the right vector, and return no deleted document.
final class CrashTests: XCTestCase {
    static let dimension = 8
    static let idSpace = 400
    /// Kills per run: a handful in CI, as many as asked by `scripts/crash_campaign.sh`.
    static let kills = Int(ProcessInfo.processInfo.environment["TIDEPOOL_CRASH_KILLS"] ?? "") ?? 16

    /// The vector the crash writer stores for `id` at operation `op` (same formula as the CLI's).
    func vector(id: UInt64, op: Int) -> [Float] {
        var r = SplitMix64(seed: id &* 1_000_003 &+ UInt64(op))
        return (0..<CrashTests.dimension).map { _ in Float(Int(r.next() % 2001) - 1000) / 100 }
    }

    func testSIGKILLNeverLosesAcknowledgedWrites() throws {
        let bin = try tidepoolBinary()
        let dir = TempDir()
        var model: [UInt64: Int] = [:]  // id -> op that wrote its live version
        var nextOp = 0
        var rng = SplitMix64(seed: 20261122)
        var totalAcked = 0
        var settingsChanges = 0
        for iteration in 0..<CrashTests.kills {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["crash-writer", "--data", dir.path, "--seed", String(iteration + 1), "--first-op", String(nextOp)]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Mostly short runs (kills land in opening, recovery and early flushes), some long ones.
            let delay = rng.next() % 4 == 0 ? 0.3 + Double(rng.next() % 900) / 1000 : 0.05 + Double(rng.next() % 300) / 1000
            Thread.sleep(forTimeInterval: delay)
            kill(p.processIdentifier, SIGKILL)
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            XCTAssertEqual(
                p.terminationReason, .uncaughtSignal, "writer ended on its own: \(String(decoding: data, as: UTF8.self).suffix(300))")

            // Replay what the writer said into the model.
            var inFlight: (op: Int, upsert: Bool, ids: [UInt64])?
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.first == "BEGIN", parts.count == 4, let op = Int(parts[1]) {
                    inFlight = (op, parts[2] == "U", parts[3].split(separator: ",").compactMap { UInt64($0) })
                    nextOp = op + 1
                } else if parts.first == "ACK", parts.count == 2, let op = Int(parts[1]), let f = inFlight, f.op == op {
                    for id in f.ids { if f.upsert { model[id] = op } else { model[id] = nil } }
                    inFlight = nil
                    totalAcked += 1
                } else if parts.first == "SETTINGS" {
                    settingsChanges += 1
                }
            }

            XCTAssertEqual(Database.verify(path: dir.path), [], "iteration \(iteration)")
            let db = try Database(path: dir.path)
            guard db.collectionNames.contains("crash") else {
                XCTAssertTrue(model.isEmpty)
                try db.close()
                continue
            }
            let c = try db.collection("crash")
            var live = 0
            for id in 0..<UInt64(CrashTests.idSpace) {
                let doc = try c.get(ids: [.uint(id)]).first
                let acked = model[id].map { vector(id: id, op: $0) }
                let flying: [Float]?? = inFlight.flatMap { f in
                    f.ids.contains(id) ? (f.upsert ? .some(vector(id: id, op: f.op)) : .some(nil)) : nil
                }
                let actual = doc?.vector
                if let flying {
                    // The unacknowledged operation may or may not have happened.
                    XCTAssertTrue(
                        actual == acked || actual == flying,
                        "id \(id): \(String(describing: actual)) is neither the acknowledged nor the in-flight version")
                    if let f = inFlight, actual == flying && actual != acked {
                        model[id] = f.upsert ? f.op : nil
                    }
                } else {
                    XCTAssertEqual(actual, acked, "iteration \(iteration): id \(id) lost or wrong")
                }
                if let doc, case .int(let op)? = doc.attributes["op"] { XCTAssertEqual(actual, vector(id: id, op: Int(op))) }
                if doc != nil { live += 1 }
            }
            XCTAssertEqual(c.count, live)
            // Deleted documents never come back through search either.
            let hits = try c.search(vector: [0, 0, 0, 0, 0, 0, 0, 0], k: 1000, options: SearchOptions(exact: true))
            XCTAssertEqual(hits.count, live)
            for h in hits { if case .uint(let id) = h.id { XCTAssertNotNil(model[id], "deleted id \(id) returned by search") } }
            // The text index (segments and replayed memtable) agrees: word w3 is on ids ≡ 3 (mod 7), live only.
            let textHits = try c.textSearch("w3", k: 1000)
            XCTAssertEqual(
                Set(textHits.map(\.id)),
                Set((0..<UInt64(CrashTests.idSpace)).filter { $0 % 7 == 3 && model[$0] != nil }.map { DocumentID.uint($0) }),
                "iteration \(iteration): text search disagrees with the acknowledged state")
            let graphHits = try c.search(vector: vector(id: 7, op: 7), k: 50)
            for h in graphHits { if case .uint(let id) = h.id { XCTAssertNotNil(model[id]) } }
            try db.close()
        }
        print(
            "crash test: \(CrashTests.kills) kills, \(totalAcked) acknowledged operations, \(settingsChanges) settings changes, every one verified"
        )
        XCTAssertGreaterThan(totalAcked, 200, "the writer should have made progress across kills")
        // The kills must have hit a database that flushes and compacts, not just a log.
        let db = try Database(path: dir.path)
        let info = try db.collection("crash").info()
        XCTAssertFalse(info.segments.isEmpty, "no flush happened")
        XCTAssertGreaterThan(info.segments.map(\.id).max() ?? 0, UInt64(info.segments.count) + 2, "no compaction happened")
        try db.close()
    }
}
