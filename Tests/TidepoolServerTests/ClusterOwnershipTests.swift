import Foundation
import NIOConcurrencyHelpers
import XCTest

/// A cluster (`serve --peers`) over a real store (SeaweedFS): each collection is written by one
/// node, the first live peer in its rendezvous order, so the writes of many collections spread
/// over the nodes; writes sent to any node reach the collection's writer; when a writer dies
/// (SIGKILL) another node takes its collections over within `--takeover-after` and a few
/// checks and every acknowledged write is still there, while the other collections keep their
/// writers; a writer that was only paused (SIGSTOP) past a takeover acknowledges nothing itself
/// once it wakes and follows the collection; two nodes that both believe they own a collection
/// (a split brain) never both acknowledge writes that the store then loses.
final class ClusterOwnershipTests: XCTestCase {
    let harness = ServeHarness()

    struct Cluster {
        let url: String
        let s3: [String: String]
        let ports: [Int]
        var peers: String { ports.map { "http://127.0.0.1:\($0)" }.joined(separator: ",") }
    }

    func makeCluster(nodes: Int) throws -> Cluster {
        let (bucket, s3) = try harness.objectStore()
        let url = "s3://\(bucket)/cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        return Cluster(url: url, s3: s3, ports: try (0..<nodes).map { _ in try harness.freePort() })
    }

    /// Starts node `i` of `c` (`extra` arguments added; `peers` instead of every node's URL).
    func start(_ c: Cluster, _ i: Int, peers: String? = nil, advertise: String? = nil) throws -> Process {
        let cache = NSTemporaryDirectory() + "tidepool-cluster-\(i)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: cache) }
        return try harness.start(
            arguments: [
                "serve", "--storage", c.url, "--cache-dir", cache, "--advertise-url", advertise ?? "http://127.0.0.1:\(c.ports[i])",
                "--peers", peers ?? c.peers, "--takeover-after", "1", "--node-name", "n\(i)",
            ], port: c.ports[i], environment: c.s3)
    }

    func upsert(_ port: Int, _ collection: String, ids: [Int]) -> (Int, [String: Any])? {
        let docs = ids.map { "{\"id\":\($0),\"vector\":[\($0),1,2,3]}" }.joined(separator: ",")
        return try? harness.request(port, "POST", "/v1/collections/\(collection)/upsert", "{\"documents\":[\(docs)]}")
    }

    /// Sends the upsert of `id` to `port` until it is acknowledged (or `within` passes); returns
    /// the seconds it took, nil when it never was.
    func upsertUntilAcknowledged(_ port: Int, _ collection: String, id: Int, within: Double) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < within {
            if upsert(port, collection, ids: [id])?.0 == 200 { return Date().timeIntervalSince(start) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }

    /// The nodes (by index) that vouch for `collection`'s head: its writers (a follower answers 409).
    func writers(_ c: Cluster, of collection: String, among nodes: [Int]) -> [Int] {
        nodes.filter { (try? harness.request(c.ports[$0], "GET", "/v1/collections/\(collection)/head", nil))?.0 == 200 }
    }

    func assertPresent(
        _ ids: [Int], in collection: String, through port: Int, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let (s, o) = try harness.request(
            port, "POST", "/v1/collections/\(collection)/get", "{\"ids\":[\(ids.map(String.init).joined(separator: ","))]}")
        XCTAssertEqual(s, 200, "\(o)", file: file, line: line)
        let got = Set(((o["documents"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? Int })
        XCTAssertEqual(
            got, Set(ids), "\(collection): acknowledged writes missing: \(Set(ids).subtracting(got).sorted())", file: file, line: line)
    }

    func testCollectionsSpreadOverTheirOwnersAndMoveOnlyWhenTheirWriterDies() throws {
        let c = try makeCluster(nodes: 3)
        var nodes = try (0..<3).map { try start(c, $0) }
        defer { for n in nodes { n.terminate() } }
        // Created and written through node 0 and node 1; each lands on its owner.
        let names = (0..<12).map { "t\($0)" }
        var acknowledged: [String: [Int]] = [:]
        for (i, name) in names.enumerated() {
            let (s, o) = try harness.request(
                c.ports[0], "POST", "/v1/collections", "{\"name\":\"\(name)\",\"dimension\":4,\"metric\":\"l2\"}")
            XCTAssertEqual(s, 201, "\(o)")
            for id in [i * 10, i * 10 + 1] {
                let (s, o) = try XCTUnwrap(upsert(c.ports[id % 2], name, ids: [id]))
                XCTAssertEqual(s, 200, "\(o)")
                acknowledged[name, default: []].append(id)
            }
        }
        var owner: [String: Int] = [:]
        for name in names {
            let w = writers(c, of: name, among: [0, 1, 2])
            XCTAssertEqual(w.count, 1, "\(name) has one writer: \(w)")
            owner[name] = w.first
        }
        XCTAssertGreaterThanOrEqual(Set(owner.values).count, 2, "the collections' writers spread over the nodes: \(owner)")

        // Kill the node that writes the most: its collections move, every other stays put.
        let counts = (0..<3).map { n in owner.values.filter { $0 == n }.count }
        let victim = counts.firstIndex(of: counts.max() ?? 0) ?? 0
        let survivors = [0, 1, 2].filter { $0 != victim }
        kill(nodes[victim].processIdentifier, SIGKILL)
        nodes[victim].waitUntilExit()
        var pauses: [Double] = []
        for (i, name) in names.enumerated() {
            let id = 1000 + i
            let took = try XCTUnwrap(upsertUntilAcknowledged(c.ports[survivors[i % 2]], name, id: id, within: 15), "\(name): no writer")
            acknowledged[name, default: []].append(id)
            if owner[name] == victim { pauses.append(took) }
        }
        print("cluster takeover: first writes after the kill acknowledged after \(pauses.map { String(format: "%.2f s", $0) })")
        for name in names {
            let w = writers(c, of: name, among: survivors)
            XCTAssertEqual(w.count, 1, "\(name) has one writer after the kill: \(w)")
            if owner[name] != victim { XCTAssertEqual(w.first, owner[name], "\(name) kept its writer") }
            try assertPresent(acknowledged[name] ?? [], in: name, through: c.ports[survivors[0]])
            try assertPresent(acknowledged[name] ?? [], in: name, through: c.ports[survivors[1]])
        }
        // The killed node comes back (same URL): it follows, and writes through it still land.
        nodes[victim] = try start(c, victim)
        for (i, name) in names.enumerated() {
            let (s, o) = try XCTUnwrap(upsert(c.ports[victim], name, ids: [2000 + i]))
            XCTAssertEqual(s, 200, "\(name) through the restarted node: \(o)")
            acknowledged[name, default: []].append(2000 + i)
            try assertPresent(acknowledged[name] ?? [], in: name, through: c.ports[victim])
        }
    }

    func testAPausedWriterThatWakesAfterATakeoverAcknowledgesNothingItselfAndFollows() throws {
        let c = try makeCluster(nodes: 2)
        let a = try start(c, 0)
        defer { a.terminate() }
        let b = try start(c, 1)
        defer { b.terminate() }
        let (s, o) = try harness.request(c.ports[0], "POST", "/v1/collections", #"{"name":"c","dimension":4,"metric":"l2"}"#)
        XCTAssertEqual(s, 201, "\(o)")
        var acknowledged = Array(0..<10)
        XCTAssertEqual(upsert(c.ports[1], "c", ids: acknowledged)?.0, 200)
        let w = writers(c, of: "c", among: [0, 1])
        XCTAssertEqual(w.count, 1)
        let (pausedIndex, otherIndex) = w.first == 0 ? (0, 1) : (1, 0)
        let (paused, pausedPort, other) = (pausedIndex == 0 ? a : b, c.ports[pausedIndex], c.ports[otherIndex])

        kill(paused.processIdentifier, SIGSTOP)
        XCTAssertNotNil(upsertUntilAcknowledged(other, "c", id: 300, within: 15), "no takeover from the paused writer")
        acknowledged.append(300)
        XCTAssertEqual(writers(c, of: "c", among: [otherIndex]), [otherIndex])
        kill(paused.processIdentifier, SIGCONT)
        // Woken, it finds that another node took over and follows; meanwhile a write it is sent
        // is forwarded to the new writer or refused, never acknowledged on its own.
        for id in 301..<320 {
            let (s, o) = try XCTUnwrap(upsert(pausedPort, "c", ids: [id]))
            if s == 200 {
                acknowledged.append(id)
                XCTAssertEqual(o["_forwarded_to"] as? String, "http://127.0.0.1:\(other)", "acknowledged by the woken writer itself: \(o)")
            } else {
                XCTAssertEqual(s, 503, "\(o)")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let demoted = Date(timeIntervalSinceNow: 5)
        while writers(c, of: "c", among: [pausedIndex]) == [pausedIndex] && Date() < demoted { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertEqual(writers(c, of: "c", among: [pausedIndex]), [], "the woken writer follows")
        try assertPresent(acknowledged, in: "c", through: other)
        try assertPresent(acknowledged, in: "c", through: pausedPort)
    }

    /// Drill 3: two nodes that each believe they alone own the collection (each is its own only
    /// peer, and neither can reach the other: each advertises a URL nobody listens on), both
    /// sent writes at once, so each keeps taking the collection over from the other. The store
    /// lets one writer acknowledge at a time; every write either one acknowledged is there
    /// afterwards.
    func testASplitBrainLosesNoAcknowledgedWrite() throws {
        let c = try makeCluster(nodes: 2)
        let unreachable = try (0..<2).map { _ in "http://127.0.0.1:\(try harness.freePort())" }
        let a = try start(c, 0, peers: unreachable[0], advertise: unreachable[0])
        defer { a.terminate() }
        let b = try start(c, 1, peers: unreachable[1], advertise: unreachable[1])
        defer { b.terminate() }
        let (s, o) = try harness.request(c.ports[0], "POST", "/v1/collections", #"{"name":"c","dimension":4,"metric":"l2"}"#)
        XCTAssertEqual(s, 201, "\(o)")
        let outcomes = NIOLockedValueBox<(acknowledged: [Int], refused: Int)>(([], 0))
        let client = harness
        let ports = c.ports
        DispatchQueue.concurrentPerform(iterations: 2) { side in
            let until = Date(timeIntervalSinceNow: 6)
            var id = side * 100_000
            while Date() < until {
                id += 1
                let docs = "{\"documents\":[{\"id\":\(id),\"vector\":[\(id),1,2,3]}]}"
                let status = (try? client.request(ports[side], "POST", "/v1/collections/c/upsert", docs))?.0
                outcomes.withLockedValue { o in if status == 200 { o.acknowledged.append(id) } else { o.refused += 1 } }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        let ids = outcomes.withLockedValue { $0.acknowledged }.sorted()
        let refused = outcomes.withLockedValue { $0.refused }
        print("split brain: \(ids.count) writes acknowledged, \(refused) refused")
        XCTAssertGreaterThan(ids.count, 20)
        XCTAssertTrue(ids.contains { $0 < 100_000 } && ids.contains { $0 > 100_000 }, "both sides acknowledged writes at some point")
        // Read back through each node, strongly (each catches up from the store first).
        try assertPresent(ids, in: "c", through: c.ports[0])
        try assertPresent(ids, in: "c", through: c.ports[1])
    }
}
