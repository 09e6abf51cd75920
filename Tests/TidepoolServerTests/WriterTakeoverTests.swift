import Foundation
import XCTest

/// Automatic writer takeover (`serve --peers`) over a real store (SeaweedFS): when the writer
/// dies (SIGKILL), the first live peer in rendezvous order takes over within `--takeover-after`
/// and a few checks, and every acknowledged write is still there; a writer that was only paused
/// (SIGSTOP) past a takeover acknowledges nothing itself once it wakes, and serves as a query
/// node (writes sent to it go to the new writer).
final class WriterTakeoverTests: XCTestCase {
    let harness = ServeHarness()

    struct Cluster {
        let url: String
        let s3: [String: String]
        let ports: [Int]
        var peers: String { ports.map { "http://127.0.0.1:\($0)" }.joined(separator: ",") }
    }

    /// A database at a fresh prefix with collection "c" holding ids 0..<10, made by a plain
    /// writer on `ports[0]` that is then killed: the manifest names a writer that is gone.
    func makeCluster(nodes: Int) throws -> Cluster {
        let (bucket, s3) = try harness.objectStore()
        let url = "s3://\(bucket)/takeover-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let ports = try (0...nodes).map { _ in try harness.freePort() }
        let cache = NSTemporaryDirectory() + "tidepool-takeover-0-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let first = try harness.start(
            arguments: ["serve", "--storage", url, "--cache-dir", cache, "--advertise-url", "http://127.0.0.1:\(ports[0])"],
            port: ports[0], environment: s3)
        var (s, o) = try harness.request(ports[0], "POST", "/v1/collections", #"{"name":"c","dimension":4,"metric":"l2"}"#)
        XCTAssertEqual(s, 201, "\(o)")
        (s, o) = try harness.request(
            ports[0], "POST", "/v1/collections/c/upsert",
            "{\"documents\":[" + (0..<10).map { "{\"id\":\($0),\"vector\":[\($0),1,2,3]}" }.joined(separator: ",") + "]}")
        XCTAssertEqual(s, 200, "\(o)")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        return Cluster(url: url, s3: s3, ports: ports)
    }

    func startPeer(_ c: Cluster, _ i: Int) throws -> Process {
        let cache = NSTemporaryDirectory() + "tidepool-takeover-\(i)-\(getpid())"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: cache) }
        return try harness.start(
            arguments: [
                "serve", "--storage", c.url, "--cache-dir", cache, "--advertise-url", "http://127.0.0.1:\(c.ports[i])",
                "--peers", c.peers, "--takeover-after", "1", "--node-name", "n\(i)",
            ], port: c.ports[i], environment: c.s3)
    }

    /// Sends upsert of `id` to `port` until it is acknowledged (or `within` passes); returns the
    /// seconds it took, nil when it never was.
    func upsertUntilAcknowledged(_ port: Int, id: Int, within: Double) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < within {
            let body = "{\"documents\":[{\"id\":\(id),\"vector\":[\(id),1,2,3]}]}"
            if let (s, _) = try? harness.request(port, "POST", "/v1/collections/c/upsert", body), s == 200 {
                return Date().timeIntervalSince(start)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return nil
    }

    /// Whether the node on `port` is the writer (it vouches for its head; a query node answers 409).
    func isWriter(_ port: Int) -> Bool { (try? harness.request(port, "GET", "/v1/collections/c/head", nil))?.0 == 200 }

    func assertPresent(_ ids: [Int], through port: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let (s, o) = try harness.request(
            port, "POST", "/v1/collections/c/get", "{\"ids\":[\(ids.map(String.init).joined(separator: ","))]}")
        XCTAssertEqual(s, 200, "\(o)", file: file, line: line)
        let got = Set(((o["documents"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? Int })
        XCTAssertEqual(got, Set(ids), "acknowledged writes missing: \(Set(ids).subtracting(got).sorted())", file: file, line: line)
    }

    func testAPeerTakesOverFromADeadWriterTwiceAndNoAcknowledgedWriteIsLost() throws {
        let c = try makeCluster(nodes: 2)
        let a = try startPeer(c, 1)
        defer { a.terminate() }
        let b = try startPeer(c, 2)
        defer { b.terminate() }
        // The manifest's writer is dead: one of the two takes over, and writes through either go on.
        let resumed = try XCTUnwrap(upsertUntilAcknowledged(c.ports[1], id: 100, within: 15), "no takeover")
        XCTAssertLessThan(resumed, 8, "writes resumed \(resumed) s after the standbys started (takeover after 1 s)")
        print(String(format: "takeover: writes resumed %.2f s after the standbys started over a dead writer", resumed))
        XCTAssertEqual([c.ports[1], c.ports[2]].filter(isWriter).count, 1, "exactly one writer")
        var acknowledged = Array(0..<10) + [100]
        for id in 101..<110 where upsertUntilAcknowledged(c.ports[2], id: id, within: 5) != nil { acknowledged.append(id) }
        try assertPresent(acknowledged, through: c.ports[1])

        // Kill the new writer: the other takes over, and has every acknowledged write.
        let (writer, other) = isWriter(c.ports[1]) ? (a, c.ports[2]) : (b, c.ports[1])
        kill(writer.processIdentifier, SIGKILL)
        let again = try XCTUnwrap(upsertUntilAcknowledged(other, id: 200, within: 15), "no second takeover")
        XCTAssertLessThan(again, 8, "writes resumed \(again) s after the writer died")
        print(String(format: "takeover: writes resumed %.2f s after the writer was killed", again))
        XCTAssertTrue(isWriter(other))
        acknowledged.append(200)
        try assertPresent(acknowledged, through: other)
    }

    func testAPausedWriterThatWakesAfterATakeoverAcknowledgesNothingAndServesAsAQueryNode() throws {
        let c = try makeCluster(nodes: 2)
        let a = try startPeer(c, 1)
        defer { a.terminate() }
        let b = try startPeer(c, 2)
        defer { b.terminate() }
        XCTAssertNotNil(upsertUntilAcknowledged(c.ports[1], id: 100, within: 15), "no takeover")
        let (paused, pausedPort, other) = isWriter(c.ports[1]) ? (a, c.ports[1], c.ports[2]) : (b, c.ports[2], c.ports[1])
        XCTAssertTrue(isWriter(pausedPort))

        kill(paused.processIdentifier, SIGSTOP)
        XCTAssertNotNil(upsertUntilAcknowledged(other, id: 300, within: 15), "no takeover from the paused writer")
        XCTAssertTrue(isWriter(other))
        kill(paused.processIdentifier, SIGCONT)
        // Woken, it finds the newer writer's manifest and becomes a query node; meanwhile a write
        // it is sent is refused or forwarded, never acknowledged on its own.
        var acknowledged = Array(0..<10) + [100, 300]
        for id in 301..<320 {
            let (s, o) = try harness.request(
                pausedPort, "POST", "/v1/collections/c/upsert", "{\"documents\":[{\"id\":\(id),\"vector\":[\(id),1,2,3]}]}")
            if s == 200 { acknowledged.append(id) } else { XCTAssertEqual(s, 503, "\(o)") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let demoted = Date(timeIntervalSinceNow: 5)
        while isWriter(pausedPort) && Date() < demoted { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(isWriter(pausedPort), "the woken writer serves as a query node")
        try assertPresent(acknowledged, through: other)
        try assertPresent(acknowledged, through: pausedPort)
    }
}
