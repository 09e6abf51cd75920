import ArgumentParser
import Foundation
import Tidepool

/// A deterministic writer for crash tests: random upserts and deletes under `always` sync,
/// with a tiny memtable so flushes and compactions happen all the time. Before each
/// operation it prints `BEGIN op kind ids`, and after it returns `ACK op`, so a test that
/// kills it with SIGKILL knows exactly which writes were acknowledged. Now and then it also
/// switches the collection's index kind and quantization, which rebuilds its segments in the background.
struct CrashWriterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "crash-writer", shouldDisplay: false)

    @Option var data: String
    @Option var seed: UInt64 = 1
    @Option var firstOp: Int = 0
    @Option var ops: Int = 1_000_000
    @Option var dimension: Int = 8
    @Option var idSpace: Int = 400
    /// Also takes and deletes snapshots, creates and drops branches, restores snapshots and
    /// backs up, with versions kept only briefly so that garbage collection runs all the time.
    @Flag var versions = false

    func run() throws {
        try runReportingErrors {
            let retention = versions ? VersionRetention(keepLast: 3, keepFor: .zero) : VersionRetention()
            let db = try Database(path: data, options: DatabaseOptions(syncPolicy: .always, buildThreads: 2, versionRetention: retention))
            var coll: Collection
            if db.collectionNames.contains("crash") {
                coll = try db.collection("crash")
            } else {
                coll = try db.createCollection(
                    "crash", dimension: dimension, metric: .l2,
                    config: CollectionConfig(
                        hnsw: HNSWParameters(m: 8, efConstruction: 32, efSearch: 32),
                        memtableBytes: 4096 * 4, minRowsForGraph: 64, maxSegments: 3,
                        text: TextIndexConfig(fields: ["t"])))
            }
            var rng = SplitMix64(seed: seed)
            var snapshotsTaken: [CollectionSnapshot] = []  // in this run: their ACK was printed
            var backedUp: [String] = []
            var marks: [(op: Int, seq: UInt64)] = []
            for op in firstOp..<(firstOp + ops) {
                if versions, rng.next() % 8 == 0 {
                    try versionAction(
                        op: op, roll: rng.next(), db: db, coll: &coll, taken: &snapshotsTaken, backedUp: &backedUp, marks: &marks)
                    continue
                }
                let roll = rng.next() % 10
                let n = Int(rng.next() % 8) + 1
                let ids = (0..<n).map { _ in UInt64(rng.next() % UInt64(idSpace)) }
                if roll < 7 {
                    emit("BEGIN \(op) U " + ids.map(String.init).joined(separator: ","))
                    try coll.upsert(
                        ids.map {
                            Document(
                                id: .uint($0), vector: CrashWriterCommand.vector(id: $0, op: op, dimension: dimension),
                                attributes: ["op": .int(Int64(op)), "t": .string("w\($0 % 7) all")])
                        })
                } else {
                    emit("BEGIN \(op) D " + ids.map(String.init).joined(separator: ","))
                    try coll.delete(ids: ids.map { .uint($0) })
                }
                emit("ACK \(op)")
                if roll == 9 {
                    let r = rng.next() % 20
                    if r == 0 { try coll.compact() }
                    // Settings changes rebuild every segment in the background: kills land mid-rebuild too.
                    if r == 1 || r == 2 {
                        // Cycle through HNSW and IVF with each kind of codes.
                        let states: [(IndexKind, Quantization)] = [
                            (.auto, .none), (.auto, .sq8), (.ivf, .pq), (.ivf, .sq8), (.ivf, .none), (.hnsw, .f16),
                        ]
                        let now = states.firstIndex { $0.0 == coll.config.index && $0.1 == coll.config.quantization } ?? 0
                        let (index, quantization) = states[(now + 1) % states.count]
                        try coll.updateIndexSettings {
                            $0.index = index; $0.quantization = quantization
                        }
                        emit("SETTINGS \(op) index=\(index.rawValue) quantization=\(quantization.rawValue)")
                    }
                }
            }
            try db.close()
        }
    }

    /// One of the version operations, announced as `BEGIN op KIND name` and acknowledged with
    /// `ACK op`: S snapshot, X delete the oldest snapshot, B branch, Y drop the oldest branch,
    /// R restore a snapshot taken in this run, K back up to `data/../backups/op`, L restore this
    /// run's newest backup as collection `b<op>`, P restore to a sequence number marked in this
    /// run (`MARK op seq` when taken; `SKIP op` when retention no longer allows it).
    private func versionAction(
        op: Int, roll: UInt64, db: Database, coll: inout Collection, taken: inout [CollectionSnapshot], backedUp: inout [String],
        marks: inout [(op: Int, seq: UInt64)]
    ) throws {
        switch roll % 9 {
        case 0:
            emit("BEGIN \(op) S s\(op)")
            taken.append(try coll.createSnapshot("s\(op)"))
        case 1:
            guard let oldest = coll.snapshots.first, coll.snapshots.count > 2 else { return }
            emit("BEGIN \(op) X \(oldest.name)")
            try coll.deleteSnapshot(oldest.name)
            taken.removeAll { $0.name == oldest.name }
        case 2:
            emit("BEGIN \(op) B b\(op)")
            try db.createBranch("b\(op)", from: "crash")
        case 3:
            guard
                let oldest = db.collectionNames.filter({ $0.hasPrefix("b") }).min(by: {
                    $0.count == $1.count ? $0 < $1 : $0.count < $1.count
                }),
                db.collectionNames.filter({ $0.hasPrefix("b") }).count > 2
            else { return }
            emit("BEGIN \(op) Y \(oldest)")
            try db.dropCollection(oldest)
        case 4:
            guard let target = taken.last else { return }
            emit("BEGIN \(op) R \(target.name)")
            try db.restoreCollection("crash", to: .version(target.version))
            coll = try db.collection("crash")
        case 5:
            let to = URL(fileURLWithPath: data).deletingLastPathComponent().path + "/backups/\(op)"
            emit("BEGIN \(op) K \(to)")
            try Backup.create(source: data, collection: "crash", destination: to)
            backedUp.append(to)
        case 7:
            // A point to return to: the test remembers the state at it.
            let seq = coll.info().lastSeq
            emit("MARK \(op) \(seq)")
            marks.append((op, seq))
            return
        case 8:
            guard let mark = marks.randomElement() else { return }
            emit("BEGIN \(op) P \(mark.op)")
            do {
                try db.restoreCollection("crash", toSequence: mark.seq)
            } catch TidepoolError.notFound {
                emit("SKIP \(op)")  // retention let the version before it go: nothing changed
                return
            }
            coll = try db.collection("crash")
        default:
            // A restore of this run's newest backup as a collection of its own (a branch name, so Y drops it too).
            guard let from = backedUp.last else { return }
            emit("BEGIN \(op) L b\(op)=\(from)")
            try db.restoreBackup(from: from, as: "b\(op)")
        }
        emit("ACK \(op)")
    }

    /// The vector written for `id` by operation `op`: tests recompute it to check content.
    static func vector(id: UInt64, op: Int, dimension: Int) -> [Float] {
        var r = SplitMix64(seed: id &* 1_000_003 &+ UInt64(op))
        return (0..<dimension).map { _ in Float(Int(r.next() % 2001) - 1000) / 100 }
    }
}
