import Foundation
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Starts `tidepool serve` as a child process and talks to it over loopback.
struct ServeHarness: Sendable {
    let key = "process-test-key-1"

    func binary() throws -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("tidepool").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw XCTSkip("tidepool is not built at \(path)") }
        return path
    }

    func start(_ data: String, port: Int, arguments: [String]? = nil) throws -> Process {
        let keys = arguments == nil ? "\(key):rw" : nil
        let p = try launch(arguments ?? ["serve", "--data", data, "--port", String(port)], environment: ["TIDEPOOL_API_KEYS": keys])
        guard waitForHealth(p, port: port, tries: 200) else { throw XCTSkip("server did not come up on port \(port)") }
        return p
    }

    /// Starts `tidepool ARGUMENTS --port PORT` with the test key and `environment` added, and
    /// fails the test (rather than skipping it) when it does not come up.
    func start(arguments: [String], port: Int, environment: [String: String]) throws -> Process {
        var env: [String: String?] = ["TIDEPOOL_API_KEYS": "\(key):rw"]
        for (k, v) in environment { env[k] = v }
        let p = try launch(arguments + ["--port", String(port)], environment: env)
        guard waitForHealth(p, port: port, tries: 400) else {
            XCTFail("tidepool \(arguments.joined(separator: " ")) did not come up on port \(port)")
            throw XCTSkip("no server")
        }
        return p
    }

    /// Runs `tidepool ARGUMENTS` with this process's environment changed by `environment` (nil
    /// removes a variable), its output discarded.
    private func launch(_ arguments: [String], environment: [String: String?]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Whether `/health` answers within `tries` × 50 ms; stops the process when it does not.
    private func waitForHealth(_ p: Process, port: Int, tries: Int) -> Bool {
        for _ in 0..<tries {
            if let (s, _) = try? request(port, "GET", "/health", nil), s == 200 { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        p.terminate()
        return false
    }

    /// The object store of `.ci/run` (SeaweedFS) as `serve --storage` wants it, or a skip (a
    /// failure under `TIDEPOOL_REQUIRE_S3=1`): the bucket and the environment to add.
    func objectStore(file: StaticString = #filePath, line: UInt = #line) throws -> (bucket: String, environment: [String: String]) {
        let env = ProcessInfo.processInfo.environment
        guard let s3 = env["TIDEPOOL_TEST_S3_ENDPOINT"] else {
            let message =
                "NO OBJECT STORE: TIDEPOOL_TEST_S3_ENDPOINT is not set, so serve --storage was not tested "
                + "(start one with scripts/seaweedfs.sh start and export what it prints)"
            print("warning: " + message)
            if env["TIDEPOOL_REQUIRE_S3"] == "1" { XCTFail(message, file: file, line: line) }
            throw XCTSkip(message)
        }
        return (env["TIDEPOOL_TEST_S3_BUCKET"] ?? "tidepool-test", ["AWS_ENDPOINT_URL": s3])
    }

    /// A loopback port no one listens on now (the kernel's choice), so a test's servers never
    /// meet the store's own randomly chosen ports.
    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw XCTSkip("no socket: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw XCTSkip("cannot bind a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// A blocking HTTP call on loopback.
    func request(_ port: Int, _ method: String, _ path: String, _ body: String?, closing: Bool = false) throws -> (Int, [String: Any]) {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        r.httpMethod = method
        if closing { r.setValue("close", forHTTPHeaderField: "Connection") }
        r.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        r.httpBody = body.map { Data($0.utf8) }
        r.timeoutInterval = 10
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, [String: Any])?
        nonisolated(unsafe) var failure: Error?
        URLSession.shared.dataTask(with: r) { data, response, error in
            if let error {
                failure = error
            } else {
                // A body that is not a JSON object (/metrics) comes back as its text under "_text".
                // The node that answered (behind a load balancer) comes back under "_node".
                var obj =
                    data.flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any]
                    ?? ["_text": String(decoding: data ?? Data(), as: UTF8.self)]
                let http = response as? HTTPURLResponse
                if let node = http?.value(forHTTPHeaderField: "X-Tidepool-Node") { obj["_node"] = node }
                // The node a write was forwarded to, if any, under "_forwarded_to".
                if let to = http?.value(forHTTPHeaderField: "X-Tidepool-Forwarded-To") { obj["_forwarded_to"] = to }
                result = (http?.statusCode ?? 0, obj)
            }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }
}
