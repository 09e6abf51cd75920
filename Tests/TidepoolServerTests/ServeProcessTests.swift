import Foundation
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `tidepool serve` as a child process: SIGKILL loses no acknowledged write, SIGTERM drains and exits.
final class ServeProcessTests: XCTestCase, @unchecked Sendable {
    let harness = ServeHarness()
    var key: String { harness.key }
    func binary() throws -> String { try harness.binary() }
    func start(_ data: String, port: Int, arguments: [String]? = nil) throws -> Process {
        try harness.start(data, port: port, arguments: arguments)
    }
    func request(_ port: Int, _ method: String, _ path: String, _ body: String?) throws -> (Int, [String: Any]) {
        try harness.request(port, method, path, body)
    }

    func testKillAndRestartKeepsAcknowledgedWritesAndTermDrains() throws {
        let dir = NSTemporaryDirectory() + "tidepool-serve-proc-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = 21000 + Int(getpid() % 2000)
        var server = try start(dir, port: port)
        XCTAssertEqual(try request(port, "POST", "/v1/collections", #"{"name":"c","dimension":4,"metric":"l2"}"#).0, 201)
        // Writers keep going while the server is killed; only 200s count as acknowledged.
        let acked = Locked()
        let writer = Thread {
            for batch in 0..<10_000 {
                let docs = (0..<10).map { i -> String in
                    let id = batch * 10 + i
                    return "{\"id\":\(id),\"vector\":[\(id),1,2,3]}"
                }
                guard
                    let (s, _) = try? self.request(
                        port, "POST", "/v1/collections/c/upsert", "{\"documents\":[\(docs.joined(separator: ","))]}"), s == 200
                else { return }
                acked.set(batch * 10 + 9)
            }
        }
        writer.start()
        Thread.sleep(forTimeInterval: 1.0)
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        Thread.sleep(forTimeInterval: 0.3)
        let lastAcked = acked.get()
        XCTAssertGreaterThan(lastAcked, 50, "the writer should have been acknowledged many times")

        server = try start(dir, port: port)
        let (s, info) = try request(port, "GET", "/v1/collections/c", nil)
        XCTAssertEqual(s, 200)
        XCTAssertGreaterThanOrEqual(info["count"] as? Int ?? 0, lastAcked + 1, "acknowledged documents lost")
        let (_, got) = try request(port, "POST", "/v1/collections/c/get", "{\"ids\":[0,\(lastAcked)]}")
        let docs = got["documents"] as? [[String: Any]] ?? []
        XCTAssertEqual(docs.count, 2)
        XCTAssertEqual(docs.last?["vector"] as? [Double], [Double(lastAcked), 1, 2, 3])

        // SIGTERM: the server drains, closes the database and exits by itself.
        kill(server.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while server.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(server.isRunning, "server did not exit after SIGTERM")
        XCTAssertEqual(server.terminationStatus, 0)
    }
}

extension ServeProcessTests {
    func testConfigurationFileSuppliesPortDataAndKeys() throws {
        let dir = NSTemporaryDirectory() + "tidepool-serve-config-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = 23000 + Int(getpid() % 2000)
        let config = dir + "/tidepool.json"
        try #"{"data": "\#(dir)/data", "port": \#(port), "sync": "batched", "api_keys": ["\#(key):rw"]}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let server = try start(dir, port: port, arguments: ["serve", "--config", config])
        defer { server.terminate(); server.waitUntilExit() }
        XCTAssertEqual(try request(port, "POST", "/v1/collections", #"{"name":"c","dimension":2}"#).0, 201)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/data/MANIFEST"))
    }
}

final class Locked: @unchecked Sendable {
    private let lock = NSLock()
    private var value = -1
    func set(_ v: Int) { lock.withLock { value = v } }
    func get() -> Int { lock.withLock { value } }
}

extension ServeProcessTests {
    /// After SIGTERM with `--shutdown-delay`, `/ready` answers 503 while requests are still
    /// served, then the server drains and exits 0.
    func testShutdownDelayTurnsReadyRedFirst() throws {
        let dir = NSTemporaryDirectory() + "tidepool-serve-drain-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = 25000 + Int(getpid() % 2000)
        let server = try start(dir, port: port)
        defer { if server.isRunning { server.terminate() } }
        XCTAssertEqual(try request(port, "GET", "/ready", nil).0, 200)
        server.terminate()
        server.waitUntilExit()
        // Restart with a delay (the first start had none), then SIGTERM.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = ["serve", "--data", dir, "--port", String(port), "--shutdown-delay", "1.5"]
        p.environment = ProcessInfo.processInfo.environment.merging(["TIDEPOOL_API_KEYS": "\(key):rw"]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        for _ in 0..<200 {
            if let (s, _) = try? request(port, "GET", "/ready", nil), s == 200 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(p.processIdentifier, SIGTERM)
        Thread.sleep(forTimeInterval: 0.3)
        let (ready, body) = try request(port, "GET", "/ready", nil)
        XCTAssertEqual(ready, 503)
        XCTAssertEqual((body["error"] as? [String: Any])?["code"] as? String, "shutting_down")
        XCTAssertEqual(try request(port, "GET", "/v1/collections", nil).0, 200, "requests are still served during the delay")
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(p.isRunning)
        XCTAssertEqual(p.terminationStatus, 0)
    }

    /// Flags that would silently mean something else are refused before anything opens.
    func testServeRefusesOutOfRangeSettings() throws {
        let dir = NSTemporaryDirectory() + "tidepool-serve-flags-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for flags in [
            ["--port", "70000"], ["--port", "0"], ["--max-in-flight", "0"], ["--request-timeout", "0"], ["--max-connections", "-1"],
            ["--wal-min-spacing=-1"], ["--garbage-grace", "nan"], ["--advertise-url", "ftp://x"],
        ] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try binary())
            p.arguments = ["serve", "--data", dir] + flags
            p.environment = ProcessInfo.processInfo.environment.merging(["TIDEPOOL_API_KEYS": "\(key):rw"]) { $1 }
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            XCTAssertNotEqual(p.terminationStatus, 0, "\(flags)")
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertTrue(text.contains(String(flags[0].dropFirst(2))) || text.contains("must be"), "\(flags): \(text)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = ["serve", "--data", dir, "--port", "1"]
        p.environment = ProcessInfo.processInfo.environment.merging(["TIDEPOOL_API_KEYS": "\(key):rw:"]) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0, "an empty key scope is refused")
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(text.contains("empty collection scope"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "nothing was created for refused settings")
    }
}
