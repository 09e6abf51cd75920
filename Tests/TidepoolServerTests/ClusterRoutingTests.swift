import Foundation
import XCTest

/// The shipped HAProxy configuration (`deploy/haproxy.cfg`, run by a real HAProxy) in front of
/// three cluster nodes over a real store (SeaweedFS): each collection's queries land on one
/// node; when that node is killed they move to another while no request sent through HAProxy
/// fails, and collections on the other nodes stay where they were; a write sent through HAProxy
/// reaches its collection's writer from whichever node it lands on, and is seen at once.
final class ClusterRoutingTests: XCTestCase {
    let harness = ServeHarness()

    /// The `haproxy` binary, or a skip (a failure under `TIDEPOOL_REQUIRE_HAPROXY=1`, as in CI).
    func haproxy() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let dirs = (env["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"]
        if let found = dirs.map({ $0 + "/haproxy" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return found
        }
        let message = "NO HAPROXY: the load-balancer routing was not tested (apt-get install haproxy)"
        print("warning: " + message)
        if env["TIDEPOOL_REQUIRE_HAPROXY"] == "1" { XCTFail(message) }
        throw XCTSkip(message)
    }

    /// `deploy/haproxy.cfg` with its frontend on `port` and `servers` (name, port) as its nodes.
    func renderConfig(port: Int, servers: [(String, Int)]) throws -> String {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shipped = try String(contentsOf: repo.appendingPathComponent("deploy/haproxy.cfg"), encoding: .utf8)
        var lines: [String] = []
        for line in shipped.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("bind ") {
                lines.append("    bind 127.0.0.1:\(port)")
            } else if t.hasPrefix("errorfile ") {
                // Relative to the shipped file's folder; this copy lives elsewhere.
                let parts = t.split(separator: " ")
                lines.append("    errorfile \(parts[1]) " + repo.appendingPathComponent("deploy/\(parts[2])").path)
            } else if t.hasPrefix("server ") {
                if !lines.contains(where: { $0.contains(" server \(servers[0].0) ") }) {
                    for (name, p) in servers { lines.append("    server \(name) 127.0.0.1:\(p) check") }
                }
            } else {
                lines.append(String(line))
                // Logged to standard error, which the test keeps.
                if t == "global" { lines.append("    log stderr format raw local0 info") }
                if t == "defaults" { lines.append("    log global\n    option httplog") }
            }
        }
        XCTAssertEqual(lines.filter { $0.hasPrefix("    server ") }.count, servers.count, "the shipped file has server lines to replace")
        let path = NSTemporaryDirectory() + "tidepool-haproxy-\(getpid()).cfg"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // Every request through HAProxy goes on a connection of its own (`closing`): Foundation's
    // URLSession on Linux was seen to hang a POST on a pooled connection HAProxy had closed
    // (10 s, its timeout), which a curl or Python keep-alive client did not.
    func testCollectionsStayOnOneNodeMoveWhenItDiesAndNoRequestFails() throws {
        let binary = try haproxy()
        let (bucket, s3) = try harness.objectStore()
        let url = "s3://\(bucket)/cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (front, pw, pa, pb) = (try harness.freePort(), try harness.freePort(), try harness.freePort(), try harness.freePort())
        var caches: [String] = []
        defer { for c in caches { try? FileManager.default.removeItem(atPath: c) } }
        let peers = [pw, pa, pb].map { "http://127.0.0.1:\($0)" }.joined(separator: ",")
        func node(_ name: String, _ port: Int) throws -> Process {
            let cache = NSTemporaryDirectory() + "tidepool-cluster-\(name)-\(getpid())"
            caches.append(cache)
            return try harness.start(
                arguments: [
                    "serve", "--storage", url, "--cache-dir", cache, "--node-name", name, "--advertise-url", "http://127.0.0.1:\(port)",
                    "--peers", peers,
                ], port: port, environment: s3)
        }
        let w = try node("w", pw)
        defer { w.terminate() }
        let a = try node("a", pa)
        defer { a.terminate() }
        let b = try node("b", pb)
        defer { b.terminate() }

        let config = try renderConfig(port: front, servers: [("w", pw), ("a", pa), ("b", pb)])
        defer { try? FileManager.default.removeItem(atPath: config) }
        let lb = Process()
        lb.executableURL = URL(fileURLWithPath: binary)
        lb.arguments = ["-f", config, "-db"]
        lb.standardOutput = FileHandle.nullDevice
        // HAProxy's log (every request, with its termination state) is printed if the test fails.
        let log = NSTemporaryDirectory() + "tidepool-haproxy-\(getpid()).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        lb.standardError = FileHandle(forWritingAtPath: log)
        defer {
            if (testRun?.failureCount ?? 0) > 0, let text = try? String(contentsOfFile: log, encoding: .utf8) {
                print("HAProxy's log:\n" + text)
            }
            try? FileManager.default.removeItem(atPath: log)
        }
        try lb.run()
        defer { lb.terminate() }
        var up = false
        for _ in 0..<100 where !up {
            up = (try? harness.request(front, "GET", "/ready", nil, closing: true))?.0 == 200
            if !up { Thread.sleep(forTimeInterval: 0.05) }
        }
        XCTAssertTrue(up, "HAProxy answers /ready from a node")

        // Collections created and written through HAProxy, wherever each request lands.
        let names = (0..<12).map { "t\($0)" }
        for (i, n) in names.enumerated() {
            var (s, o) = try harness.request(
                front, "POST", "/v1/collections", "{\"name\":\"\(n)\",\"dimension\":4,\"metric\":\"l2\"}", closing: true)
            XCTAssertEqual(s, 201, "\(o)")
            (s, o) = try harness.request(
                front, "POST", "/v1/collections/\(n)/upsert", "{\"documents\":[{\"id\":\(i),\"vector\":[\(i),1,2,3]}]}", closing: true)
            XCTAssertEqual(s, 200, "a write lands on any node and reaches its collection's writer: \(o)")
        }
        // Each collection's queries land on one node, and a strong read there sees its write.
        func home(_ i: Int) throws -> String {
            var seen: Set<String> = []
            for _ in 0..<3 {
                let (s, o) = try harness.request(
                    front, "POST", "/v1/collections/\(names[i])/query", "{\"vector\":[\(i),1,2,3],\"k\":1}", closing: true)
                XCTAssertEqual(s, 200, "\(o)")
                XCTAssertEqual((o["results"] as? [[String: Any]])?.first?["id"] as? Int, i, "\(o)")
                seen.insert(o["_node"] as? String ?? "?")
            }
            XCTAssertEqual(seen.count, 1, "collection \(names[i]) answered by \(seen)")
            return seen.first ?? "?"
        }
        let homes = try (0..<names.count).map(home)
        XCTAssertGreaterThanOrEqual(Set(homes).count, 2, "collections spread over the nodes: \(homes)")

        // Kill a query node that is home to some collections: every request keeps succeeding.
        let victim = homes.contains("a") ? "a" : "b"
        kill((victim == "a" ? a : b).processIdentifier, SIGKILL)
        let until = Date(timeIntervalSinceNow: 2.5)
        var answered = 0
        while Date() < until {
            for i in 0..<names.count {
                let (s, o) = try harness.request(
                    front, "POST", "/v1/collections/\(names[i])/query", "{\"vector\":[\(i),1,2,3],\"k\":1}", closing: true)
                XCTAssertEqual(s, 200, "\(names[i]) after node \(victim) died: \(o)")
                XCTAssertNotEqual(o["_node"] as? String, victim)
                answered += 1
            }
        }
        XCTAssertGreaterThan(answered, names.count)
        let after = try (0..<names.count).map(home)
        for i in 0..<names.count {
            if homes[i] == victim {
                XCTAssertNotEqual(after[i], victim)
            } else {
                XCTAssertEqual(after[i], homes[i], "\(names[i]) stays on its node (consistent hashing)")
            }
        }
    }
}
