import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import Tidepool
import XCTest

@testable import TidepoolServer

/// The server under clients that misbehave: slow or idle connections, a key that floods, requests
/// that ask for huge answers or wrong methods, scoped keys reading metrics.
final class ServerAbuseTests: XCTestCase {
    func testSlowAndIdleConnectionsAreClosedAndHoldNoSlot() async throws {
        try await withServer(
            maxInFlight: 1,
            configure: {
                $0.headerTimeout = .milliseconds(400)
                $0.bodyTimeout = .milliseconds(400)
            }
        ) { c in
            let port = try XCTUnwrap(c.port)
            let idle = try RawSocket(port: port)
            let halfHead = try RawSocket(port: port)
            halfHead.send("POST /v1/collections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer write-key-0001\r\n")
            let noBody = try RawSocket(port: port)
            noBody.send(
                "POST /v1/collections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer write-key-0001\r\nContent-Length: 100\r\n\r\n{\"na")
            // The one in-flight slot is free: a body that has not arrived does not hold it.
            let (s, o) = try await call(c, .post, "/v1/collections", auth: rw, #"{"name":"a","dimension":2}"#)
            XCTAssertEqual(s, .created, "\(o)")
            for (name, sock) in [("idle", idle), ("half-sent head", halfHead), ("body never sent", noBody)] {
                let (_, closed) = sock.readUntilClosed(within: 5)
                XCTAssertTrue(closed, "\(name) connection still open")
            }
            // A keep-alive connection that goes quiet after a response is closed too.
            let keepAlive = try RawSocket(port: port)
            keepAlive.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            let (text, closed) = keepAlive.readUntilClosed(within: 5)
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 200"), text)
            XCTAssertTrue(closed)
        }
    }

    func testOneKeyCannotTakeEverySlot() async throws {
        let executor = EngineExecutor(readThreads: 4, writeThreads: 1, maxInFlight: 3, maxInFlightPerKey: 2)
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let blocked = (0..<2).map { _ in
            Task {
                try await executor.run(key: "flood", timeout: .seconds(30)) {
                    started.signal()
                    release.wait()
                    return 1
                }
            }
        }
        started.wait()
        started.wait()
        do {
            _ = try await executor.run(key: "flood", timeout: .seconds(30)) { 0 }
            XCTFail("a third call for the flooding key was admitted")
        } catch let e as APIError {
            XCTAssertEqual(e.status, .tooManyRequests)
            XCTAssertTrue(e.message.contains("this API key"), e.message)
        }
        let other = try await executor.run(key: "other", timeout: .seconds(30)) { 7 }
        XCTAssertEqual(other, 7, "another key still gets a slot")
        release.signal()
        release.signal()
        for t in blocked { _ = try await t.value }
        XCTAssertEqual(executor.inFlight, 0)
        await executor.stop()
    }

    func testDeadlineAnswersAtOnceAndTheSlotIsHeldUntilTheWorkStops() async throws {
        let executor = EngineExecutor(readThreads: 2, writeThreads: 1, maxInFlight: 4, maxInFlightPerKey: 4)
        let release = DispatchSemaphore(value: 0)
        let start = ContinuousClock.now
        do {
            _ = try await executor.run(key: "k", timeout: .milliseconds(100)) {
                release.wait()
                return 1
            }
            XCTFail("no timeout")
        } catch let e as APIError {
            XCTAssertEqual(e.code, "deadline_exceeded")
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
        XCTAssertEqual(executor.inFlight, 1, "abandoned work still counts against its key")
        release.signal()
        for _ in 0..<200 where executor.inFlight > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(executor.inFlight, 0)
        await executor.stop()
        do {
            _ = try await executor.run(key: "k", timeout: .seconds(1)) { 1 }
            XCTFail("ran after stop")
        } catch let e as APIError {
            XCTAssertEqual(e.code, "shutting_down")
        }
    }

    func testAnswersAreBoundedAndWrongMethodsGet405() async throws {
        try await withServer(configure: { $0.limits = RequestLimits(maxResults: 10, maxIDs: 3, maxScanLimit: 4, maxReturnedFloats: 5) }) {
            c in
            var (s, o) = try await call(c, .post, "/v1/collections", auth: rw, #"{"name":"d","dimension":2,"metric":"l2"}"#)
            XCTAssertEqual(s, .created)
            let docs = (0..<8).map { "{\"id\":\($0),\"vector\":[\($0),1]}" }.joined(separator: ",")
            (s, o) = try await call(c, .post, "/v1/collections/d/upsert", auth: rw, "{\"documents\":[\(docs)]}")
            XCTAssertEqual(s, .ok, "\(o)")
            let refused = [
                ("/v1/collections/d/query", #"{"vectors":[[0,0],[1,1]],"k":6}"#, "vectors × k"),
                ("/v1/collections/d/query", #"{"vector":[0,0],"k":4,"include":["vectors"]}"#, "vector components"),
                ("/v1/collections/d/get", #"{"ids":[1,2,3,4],"include_vectors":false}"#, "ids"),
                ("/v1/collections/d/get", #"{"ids":[1,2,3]}"#, "vector components"),
                ("/v1/collections/d/scan", #"{"limit":5}"#, "limit"),
                ("/v1/collections/d/scan", #"{"limit":4,"include_vectors":true}"#, "vector components"),
            ]
            for (path, body, what) in refused {
                (s, o) = try await call(c, .post, path, auth: ro, body)
                XCTAssertEqual(s, .badRequest, "\(path) \(body)")
                XCTAssertTrue(((o["error"] as? [String: Any])?["message"] as? String ?? "").contains(what), "\(o)")
            }
            (s, o) = try await call(c, .post, "/v1/collections/d/query", auth: ro, #"{"vectors":[[0,0],[1,1]],"k":5}"#)
            XCTAssertEqual(s, .ok, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/d/get", auth: ro, #"{"ids":[1,2,3],"include_vectors":false}"#)
            XCTAssertEqual(s, .ok, "\(o)")

            for (method, path, allow) in [
                (HTTPRequest.Method.put, "/v1/collections", "GET, POST"), (.get, "/v1/collections/d/query", "POST"),
                (.post, "/v1/collections/d", "GET, PATCH, DELETE"), (.delete, "/health", "GET"),
            ] {
                let (status, allowHeader) = try await c.execute(uri: path, method: method, headers: [.authorization: ro]) {
                    ($0.status, $0.headers[.allow])
                }
                XCTAssertEqual(status, .methodNotAllowed, "\(method) \(path)")
                XCTAssertEqual(allowHeader, allow)
            }
            (s, o) = try await call(c, .get, "/v1/nothing-here", auth: ro)
            XCTAssertEqual(s, .notFound)
            XCTAssertEqual(code(o), "not_found")
        }
    }

    func testMetricsNeedAnUnscopedKeyAndForgetDroppedCollections() async throws {
        try await withServer { c in
            _ = try await call(c, .post, "/v1/collections", auth: rw, #"{"name":"gone","dimension":2}"#)
            func metrics(_ auth: String) async throws -> (HTTPResponse.Status, String) {
                try await c.execute(uri: "/metrics", method: .get, headers: [.authorization: auth]) { ($0.status, String(buffer: $0.body)) }
            }
            var (s, text) = try await metrics(scoped)
            XCTAssertEqual(s, .forbidden)
            XCTAssertFalse(text.contains("gone"))
            (s, text) = try await metrics(ro)
            XCTAssertEqual(s, .ok)
            XCTAssertTrue(text.contains(#"tidepool_documents{collection="gone"}"#), text)
            XCTAssertTrue(text.contains("tidepool_collection_degraded"), text)
            // A local directory's WAL is listed for every scrape (object storage: once listed).
            XCTAssertTrue(text.contains(#"tidepool_wal_bytes{collection="gone"}"#), text)
            _ = try await call(c, .delete, "/v1/collections/gone", auth: rw)
            (s, text) = try await metrics(ro)
            XCTAssertFalse(text.contains(#"collection="gone""#), text)
        }
    }

    func testIdsAbove2To63AndCreateMismatches() async throws {
        try await withServer { c in
            let big = "18446744073709551615", mid = "9223372036854775808"
            var (s, o) = try await call(
                c, .post, "/v1/collections/u/upsert", auth: rw,
                "{\"documents\":[{\"id\":\(big),\"vector\":[1,0]},{\"id\":\(mid),\"vector\":[0,1]},{\"id\":5,\"vector\":[1,1]}],\"create\":{\"metric\":\"l2\"}}"
            )
            XCTAssertEqual(s, .ok, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/u/get", auth: ro, "{\"ids\":[\(big),\(mid)]}")
            XCTAssertEqual(s, .ok, "\(o)")
            XCTAssertEqual(
                (o["documents"] as? [[String: Any]])?.compactMap { ($0["id"] as? NSNumber)?.uint64Value }, [UInt64.max, 1 << 63])
            (s, o) = try await call(c, .post, "/v1/collections/u/scan", auth: ro, "{\"after\":\(mid)}")
            XCTAssertEqual(s, .ok, "\(o)")
            XCTAssertEqual((o["documents"] as? [[String: Any]])?.compactMap { ($0["id"] as? NSNumber)?.uint64Value }, [UInt64.max])
            (s, o) = try await call(c, .post, "/v1/collections/u/delete", auth: rw, "{\"ids\":[\(big)]}")
            XCTAssertEqual(o["deleted"] as? Int, 1, "\(o)")
            (s, o) = try await call(c, .post, "/v1/collections/u/get", auth: ro, "{\"ids\":[18446744073709551616]}")
            XCTAssertEqual(s, .badRequest, "ids past UInt64.max are refused")

            (s, o) = try await call(
                c, .post, "/v1/collections/u/upsert", auth: rw, #"{"documents":[{"id":1,"vector":[1,0]}],"create":{"metric":"cosine"}}"#)
            XCTAssertEqual(s, .conflict, "\(o)")
            XCTAssertEqual(code(o), "collection_mismatch")
            (s, o) = try await call(c, .post, "/v1/collections/u/get", auth: ro, #"{"ids":[1]}"#)
            XCTAssertEqual((o["documents"] as? [[String: Any]])?.count, 0, "the refused upsert wrote nothing")
        }
    }

    func testConfigurationAndKeysAreValidated() throws {
        XCTAssertThrowsError(try APIKeyring(spec: "abcdefgh:rw:"))
        XCTAssertThrowsError(try APIKeyring(spec: "abcdefgh:rw:a||b"))
        XCTAssertThrowsError(try APIKeyring(spec: "abcdefgh:rw:a:b"))
        XCTAssertEqual(try APIKeyring(spec: "abcdefgh:rw:a|b").keys.first?.collections, ["a", "b"])
        let keys = APIKeyring(keys: [])
        for bad in [
            ServerConfiguration(port: 70000, keys: keys), ServerConfiguration(keys: keys, maxInFlight: 0),
            ServerConfiguration(keys: keys, maxInFlight: 4, maxInFlightPerKey: 5), ServerConfiguration(keys: keys, maxConnections: 0),
            ServerConfiguration(keys: keys, requestTimeout: .zero), ServerConfiguration(keys: keys, limits: RequestLimits(maxIDs: 0)),
        ] {
            XCTAssertThrowsError(try bad.validate())
        }
        XCTAssertNoThrow(try ServerConfiguration(keys: keys).validate())
    }
}
