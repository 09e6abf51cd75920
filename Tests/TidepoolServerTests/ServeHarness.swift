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
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = arguments ?? ["serve", "--data", data, "--port", String(port)]
        var env = ProcessInfo.processInfo.environment
        env["TIDEPOOL_API_KEYS"] = arguments == nil ? "\(key):rw" : nil
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        for _ in 0..<200 {
            if let (s, _) = try? request(port, "GET", "/health", nil), s == 200 { return p }
            Thread.sleep(forTimeInterval: 0.05)
        }
        p.terminate()
        throw XCTSkip("server did not come up on port \(port)")
    }

    /// A blocking HTTP call on loopback.
    func request(_ port: Int, _ method: String, _ path: String, _ body: String?) throws -> (Int, [String: Any]) {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        r.httpMethod = method
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
                let obj = data.flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any] ?? [:]
                result = ((response as? HTTPURLResponse)?.statusCode ?? 0, obj)
            }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        return result!
    }
}
