import Foundation

@testable import Tidepool

/// A test-only `ObjectStore` in memory, with the atomicity of a real one (a create is a
/// compare-and-set under one lock), a count of requests by kind, and faults to inject: creates
/// that fail with an unknown outcome after being applied or before, and a pause that lets a test
/// order two writers' requests.
final class MemoryObjectStore: ObjectStore, @unchecked Sendable {
    private struct Object {
        var bytes: [UInt8]
        var token: String?
    }

    /// What a create should do when the test says so.
    enum CreateFault {
        /// The object is written, but the caller hears nothing (a lost answer).
        case appliedButLost
        /// Nothing is written, and the caller hears nothing (a lost request).
        case lost
        /// The object is written, then the store stays unreachable through every retry: the
        /// create throws, its outcome unknown to the caller.
        case appliedThenUnreachable
        /// Nothing is written and the store stays unreachable: the create throws.
        case unreachable
    }

    private let lock = NSLock()
    private var objects: [String: Object] = [:]
    private var requests: [String: Int] = [:]
    /// Faults for the next creates whose key contains the given string, in order.
    private var createFaults: [(match: String, fault: CreateFault)] = []
    let location: String

    init(name: String = "bucket") { location = "mem://" + name }

    func url(_ key: String) -> String { location + "/" + key }

    /// Requests so far by kind (`GET`, `GET range`, `HEAD`, `PUT`, `PUT if absent`, `DELETE`, `LIST`).
    func count(_ kinds: String...) -> Int { lock.withLock { kinds.reduce(0) { $0 + (requests[$1] ?? 0) } } }
    func resetCounts() {
        lock.withLock {
            requests = [:]
            bytesServed = 0
        }
    }

    var keys: [String] { lock.withLock { objects.keys.sorted() } }
    func bytes(_ key: String) -> [UInt8]? { lock.withLock { objects[key]?.bytes } }
    func remove(_ key: String) { lock.withLock { _ = objects.removeValue(forKey: key) } }

    /// Runs once, just before the next create of a key containing `match`: a test's way to let
    /// another writer's object land first (a PUT that was in flight when its writer died).
    func beforeNextCreate(whereKeyContains match: String, _ body: @escaping (MemoryObjectStore, String) -> Void) {
        lock.withLock { beforeCreate = (match, body) }
    }
    private var beforeCreate: (match: String, body: (MemoryObjectStore, String) -> Void)?

    /// Creates an object as another writer would (with its own token).
    func plant(_ key: String, _ bytes: [UInt8]) { lock.withLock { objects[key] = Object(bytes: bytes, token: "another-writer") } }

    func injectCreateFault(_ fault: CreateFault, whereKeyContains match: String) {
        lock.withLock { createFaults.append((match, fault)) }
    }

    private func note(_ kind: String) { requests[kind, default: 0] += 1 }

    func get(_ key: String, range: Range<Int>?) throws -> [UInt8]? {
        let held: DispatchGroup? = lock.withLock {
            guard let h = holdLargeGets, let r = range, r.count > h.larger else { return nil }
            return h.gate
        }
        held?.wait()
        return try lock.withLock {
            note(range == nil ? "GET" : "GET range")
            if getFailures > 0 && key.hasSuffix(".tps") {
                getFailures -= 1
                throw TidepoolError.storage("GET \(url(key)) failed: unreachable (injected)")
            }
            if let (k, bytes) = refusedRange, k == key, (range ?? 0..<Int.max).overlaps(bytes) {
                throw TidepoolError.storage("GET \(url(key)) range \(String(describing: range)) refused (injected)")
            }
            guard let o = objects[key] else { return nil }
            guard let range else {
                bytesServed += o.bytes.count
                return o.bytes
            }
            guard range.lowerBound >= 0 else { throw TidepoolError.storage("bad range \(range) for \(url(key))") }
            let lo = min(range.lowerBound, o.bytes.count)
            let out = Array(o.bytes[lo..<min(range.upperBound, o.bytes.count)])
            bytesServed += out.count
            return out
        }
    }

    /// Bytes every GET has returned so far.
    var servedBytes: Int { lock.withLock { bytesServed } }
    private var bytesServed = 0
    private var getFailures = 0
    private var holdLargeGets: (larger: Int, gate: DispatchGroup)?

    private var refusedRange: (String, Range<Int>)?

    /// GETs of `key` that include any byte of `bytes` fail (nil: none fail), so a test can tell
    /// what a reader did without those bytes.
    func refuseGets(of key: String, overlapping bytes: Range<Int>?) {
        lock.withLock { refusedRange = bytes.map { (key, $0) } }
    }

    /// The next `count` GETs of segment files fail as an unreachable store would.
    func failSegmentGets(_ count: Int) { lock.withLock { getFailures = count } }

    /// Range GETs of more than `bytes` wait until `releaseLargeGets` (what holds back a
    /// background download while smaller reads go through).
    func holdGets(largerThan bytes: Int) {
        let gate = DispatchGroup()
        gate.enter()
        lock.withLock { holdLargeGets = (bytes, gate) }
    }

    func releaseLargeGets() {
        let gate = lock.withLock {
            defer { holdLargeGets = nil }
            return holdLargeGets?.gate
        }
        gate?.leave()
    }

    func head(_ key: String) throws -> ObjectHead? {
        lock.withLock {
            note("HEAD")
            return objects[key].map { ObjectHead(size: $0.bytes.count, token: $0.token) }
        }
    }

    func createIfAbsent(_ key: String, _ bytes: [UInt8], token: String) throws -> Bool {
        let hook: ((MemoryObjectStore, String) -> Void)? = lock.withLock {
            guard let b = beforeCreate, key.contains(b.match) else { return nil }
            beforeCreate = nil
            return b.body
        }
        hook?(self, key)
        let fault: CreateFault? = lock.withLock {
            note("PUT if absent")
            guard let i = createFaults.firstIndex(where: { key.contains($0.match) }) else { return nil }
            return createFaults.remove(at: i).fault
        }
        if fault == .appliedThenUnreachable {
            lock.withLock { if objects[key] == nil { objects[key] = Object(bytes: bytes, token: token) } }
            throw TidepoolError.storage("object store PUT if absent \(url(key)) failed: unreachable (injected)")
        }
        if fault == .unreachable { throw TidepoolError.storage("object store PUT if absent \(url(key)) failed: unreachable (injected)") }
        if let fault {
            // What S3ObjectStore does on an unknown outcome: read the token back, create again
            // when absent.
            if fault == .appliedButLost {
                lock.withLock { if objects[key] == nil { objects[key] = Object(bytes: bytes, token: token) } }
            }
            if let head = try head(key) { return head.token == token }
        }
        return lock.withLock {
            guard objects[key] == nil else { return false }
            objects[key] = Object(bytes: bytes, token: token)
            return true
        }
    }

    func delete(_ key: String) throws {
        lock.withLock {
            note("DELETE")
            objects.removeValue(forKey: key)
        }
    }

    /// Keys a listing leaves out for now, as a store whose listings lag its creates does.
    var unlisted: Set<String> {
        get { lock.withLock { hiddenFromListing } }
        set { lock.withLock { hiddenFromListing = newValue } }
    }
    private var hiddenFromListing: Set<String> = []

    func list(prefix: String) throws -> [ObjectEntry] {
        lock.withLock {
            note("LIST")
            return objects.filter { $0.key.hasPrefix(prefix) && !hiddenFromListing.contains($0.key) }
                .map { ObjectEntry(key: $0.key, size: $0.value.bytes.count) }
                .sorted { $0.key < $1.key }
        }
    }

    func names(under folder: String) throws -> [String] {
        lock.withLock {
            note("LIST")
            let prefix = folder + "/"
            let names = objects.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).prefix { $0 != "/" }) }
            return Array(Set(names)).sorted()
        }
    }
}
