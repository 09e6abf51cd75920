import Foundation
import Tidepool
import XCTest

/// SIGKILL while a writer takes and deletes snapshots, branches and drops branches, restores a
/// snapshot or a marked sequence number, backs up and restores backups, and collects garbage (versions kept only briefly), at random moments.
/// After every kill: the database verifies (every kept version and snapshot has its files), every
/// acknowledged write is there, every snapshot, branch and finished backup holds exactly the
/// state it was taken from, and an unfinished backup is refused.
final class VersionCrashTests: XCTestCase {
    typealias Model = [UInt64: Int]  // id -> op that wrote its live version
    static let kills = Int(ProcessInfo.processInfo.environment["TIDEPOOL_CRASH_KILLS"] ?? "") ?? 16
    let dimension = 8
    let idSpace: UInt64 = 400

    func vector(id: UInt64, op: Int) -> [Float] {
        var r = SplitMix64(seed: id &* 1_000_003 &+ UInt64(op))
        return (0..<dimension).map { _ in Float(Int(r.next() % 2001) - 1000) / 100 }
    }

    /// Whether `docs` (every live document) is exactly `model`.
    func holds(_ docs: [Document], _ model: Model) -> Bool {
        guard docs.count == model.count else { return false }
        return docs.allSatisfy { d in
            guard case .uint(let id) = d.id, let op = model[id] else { return false }
            return d.vector == vector(id: id, op: op)
        }
    }

    func all(_ c: Collection, asOf: VersionSelector? = nil) throws -> [Document] {
        try c.scan(limit: 100_000, includeVectors: true, asOf: asOf).documents
    }

    func testSIGKILLDuringSnapshotsBranchesRestoresBackupsAndGarbageCollection() throws {
        let bin = try tidepoolBinary()
        let root = TempDir()
        let data = root.path + "/db"
        var model: Model = [:]
        var snapshots: [String: Model] = [:]
        var branches: [String: Model] = [:]
        var backups: [String: Model] = [:]
        var marks: [String: Model] = [:]  // the state at each marked sequence number, by the op that marked it
        var nextOp = 0
        var rng = SplitMix64(seed: 20261208)
        var counts: [String: Int] = [:]
        for iteration in 0..<VersionCrashTests.kills {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["crash-writer", "--versions", "--data", data, "--seed", String(iteration + 1), "--first-op", String(nextOp)]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: 0.1 + Double(rng.next() % 700) / 1000)
            kill(p.processIdentifier, SIGKILL)
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()

            // Replay what the writer said; keep the last unacknowledged operation aside.
            var inFlight: (op: Int, kind: Substring, arg: Substring, before: Model)?
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.first == "BEGIN", parts.count == 4, let op = Int(parts[1]) {
                    inFlight = (op, parts[2], parts[3], model)
                    nextOp = op + 1
                } else if parts.first == "MARK", parts.count == 3 {
                    marks[String(parts[1])] = model
                } else if parts.first == "SKIP", parts.count == 2, let op = Int(parts[1]), inFlight?.op == op {
                    inFlight = nil
                } else if parts.first == "ACK", parts.count == 2, let op = Int(parts[1]), let f = inFlight, f.op == op {
                    apply(f.kind, f.arg, op: op, model: &model, snapshots: &snapshots, branches: &branches, backups: &backups, marks: marks)
                    counts[String(f.kind), default: 0] += 1
                    inFlight = nil
                }
            }

            XCTAssertEqual(Database.verify(path: data), [], "iteration \(iteration)")
            let db = try Database(path: data, options: DatabaseOptions(versionRetention: VersionRetention(keepLast: 3, keepFor: .zero)))
            defer { try? db.close() }
            guard db.collectionNames.contains("crash") else {
                XCTAssertTrue(model.isEmpty)
                continue
            }
            let c = try db.collection("crash")
            let docs = try all(c)
            // The operation in flight may or may not have happened; whichever did becomes the model.
            if let f = inFlight {
                var after = f.before
                var s2 = snapshots, b2 = branches, k2 = backups
                apply(f.kind, f.arg, op: f.op, model: &after, snapshots: &s2, branches: &b2, backups: &k2, marks: marks)
                if holds(docs, model) {
                    // Not applied to the main collection (or it does not change it): the others decide below.
                } else {
                    XCTAssertTrue(
                        holds(docs, after), "iteration \(iteration): the collection is neither before nor after op \(f.op) \(f.kind)")
                    model = after
                }
                // A snapshot, branch or backup in flight exists or not; when it does, it holds the state it began from.
                switch f.kind {
                case "S" where c.snapshots.contains { $0.name == String(f.arg) }: snapshots[String(f.arg)] = f.before
                case "X" where !c.snapshots.contains { $0.name == String(f.arg) }: snapshots[String(f.arg)] = nil
                case "B" where db.collectionNames.contains(String(f.arg)): branches[String(f.arg)] = f.before
                case "Y" where !db.collectionNames.contains(String(f.arg)): branches[String(f.arg)] = nil
                case "K": backups[String(f.arg)] = FileManager.default.fileExists(atPath: String(f.arg) + "/BACKUP") ? f.before : nil
                case "L":
                    // A restore killed before its commit leaves nothing; after it, the whole backup.
                    let parts = f.arg.split(separator: "=", maxSplits: 1).map(String.init)
                    if parts.count == 2, db.collectionNames.contains(parts[0]) { branches[parts[0]] = backups[parts[1]] }
                default: break
                }
            }
            XCTAssertTrue(holds(docs, model), "iteration \(iteration): acknowledged writes lost or wrong (\(docs.count) vs \(model.count))")
            XCTAssertEqual(Set(c.snapshots.map(\.name)), Set(snapshots.keys), "iteration \(iteration)")
            for pin in c.snapshots {
                XCTAssertTrue(holds(try all(c, asOf: .version(pin.version)), snapshots[pin.name] ?? [:]), "snapshot \(pin.name)")
            }
            XCTAssertEqual(Set(db.collectionNames.filter { $0 != "crash" }), Set(branches.keys), "iteration \(iteration)")
            for (name, expected) in branches {
                XCTAssertTrue(holds(try all(try db.collection(name)), expected), "iteration \(iteration): branch \(name)")
            }
            // The newest finished backup restores to exactly what it was taken from.
            if let (path, expected) = backups.max(by: { $0.key.count == $1.key.count ? $0.key < $1.key : $0.key.count < $1.key.count }) {
                let scratch = TempDir()
                let target = try Database(path: scratch.path)
                try target.restoreBackup(from: path)
                XCTAssertTrue(holds(try all(try target.collection("crash")), expected), "iteration \(iteration): backup \(path)")
                try target.close()
            }
        }
        print("version crash test: \(VersionCrashTests.kills) kills, acknowledged \(counts.sorted { $0.key < $1.key })")
        for kind in ["S", "B", "R", "K", "L", "P"] { XCTAssertGreaterThan(counts[kind] ?? 0, 0, "no \(kind) operation was acknowledged") }
    }

    func apply(
        _ kind: Substring, _ arg: Substring, op: Int, model: inout Model, snapshots: inout [String: Model],
        branches: inout [String: Model], backups: inout [String: Model], marks: [String: Model]
    ) {
        switch kind {
        case "U": for id in arg.split(separator: ",").compactMap({ UInt64($0) }) { model[id] = op }
        case "D": for id in arg.split(separator: ",").compactMap({ UInt64($0) }) { model[id] = nil }
        case "S": snapshots[String(arg)] = model
        case "X": snapshots[String(arg)] = nil
        case "B": branches[String(arg)] = model
        case "Y": branches[String(arg)] = nil
        case "R": if let s = snapshots[String(arg)] { model = s }
        case "K": backups[String(arg)] = model
        case "P": if let m = marks[String(arg)] { model = m }
        case "L":
            let parts = arg.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let m = backups[String(parts[1])] { branches[String(parts[0])] = m }
        default: break
        }
    }
}
