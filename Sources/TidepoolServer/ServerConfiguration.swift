import Foundation
import NIOCore

/// Settings of `tidepool serve`: where to listen, who may call, and the limits that keep one
/// client from taking the server from the others.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 asks the operating system for a free port (tests); `tidepool serve` takes 1...65535.
    public var port: Int
    /// Keys allowed to call the API; empty means no key is accepted (only /health and /ready answer).
    public var keys: APIKeyring
    /// Larger request bodies get 413.
    public var maxBodyBytes: Int
    /// Requests in flight (body received, engine call queued or running) before answering 429.
    public var maxInFlight: Int
    /// Requests in flight for one API key before answering that key 429, so one key (a read-only
    /// one included) cannot take every slot.
    public var maxInFlightPerKey: Int
    /// Open connections beyond this wait in the kernel's accept queue.
    public var maxConnections: Int
    /// Engine time one request may take; then it is answered 503 `deadline_exceeded` and its
    /// engine work stops at its next check.
    public var requestTimeout: TimeAmount
    /// A request head must arrive within this of the connection opening or of the previous
    /// response (the keep-alive idle limit too); then the connection is closed.
    public var headerTimeout: TimeAmount
    /// A request body must arrive within this of its head; then the connection is closed.
    public var bodyTimeout: TimeAmount
    /// Threads running reads (queries, gets, scans), apart from NIO's event loops: one per core
    /// keeps them busy without oversubscribing.
    public var readThreads: Int
    /// Threads running writes, which mostly wait: for fsync, or on object storage for a WAL PUT
    /// of 100 ms or more. Separate from reads so a slow disk never holds queries up, and many, so
    /// that requests waiting for one commit do not keep the next ones from joining the next
    /// group commit (with 2 threads, 8 clients on object storage got 2 requests per WAL object).
    public var writeThreads: Int
    /// After SIGTERM, `/ready` answers 503 for this long before the server stops accepting, so a
    /// load balancer stops sending traffic first; requests are still served meanwhile.
    public var shutdownDelay: TimeAmount
    /// On a query node over object storage: writes are forwarded to the writer the manifest
    /// names (true), or refused with 403 `read_only` naming it (false).
    public var forwardWrites: Bool
    /// Caps on what one request may ask for.
    public var limits: RequestLimits
    /// This node's name in the `X-Tidepool-Node` header of every response (default
    /// `host:port`), so a client or a test behind a load balancer can tell which node answered.
    public var nodeName: String?
    /// Requests a second one collection may take (nil: no limit), with bursts of
    /// `collectionBurst` (default the rate): beyond it 429 `rate_limited` with `Retry-After`.
    public var collectionRate: Double?
    public var collectionBurst: Double?
    /// Request-body bytes a second one collection may send (nil: no limit), with bursts of
    /// `collectionBytesBurst` (default the larger of the rate and `maxBodyBytes`, so that any
    /// request the server takes can pass): beyond it 429 `rate_limited` with `Retry-After`.
    public var collectionBytesRate: Double?
    public var collectionBytesBurst: Double?
    /// Rows one collection may hold written but not yet indexed (nil: no limit): upserts beyond
    /// it get 429 `backlog_full` with `Retry-After` until its indexer catches up.
    public var collectionBacklog: Int?

    public init(
        host: String = "127.0.0.1", port: Int = 8080, keys: APIKeyring, maxBodyBytes: Int = 64 << 20,
        maxInFlight: Int = 256, maxInFlightPerKey: Int? = nil, maxConnections: Int = 1024,
        requestTimeout: TimeAmount = .seconds(30), headerTimeout: TimeAmount = .seconds(30), bodyTimeout: TimeAmount = .seconds(60),
        readThreads: Int = ProcessInfo.processInfo.activeProcessorCount,
        writeThreads: Int = 32, shutdownDelay: TimeAmount = .zero, forwardWrites: Bool = true,
        limits: RequestLimits = RequestLimits(), nodeName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.keys = keys
        self.maxBodyBytes = maxBodyBytes
        self.maxInFlight = maxInFlight
        self.maxInFlightPerKey = maxInFlightPerKey ?? max(1, maxInFlight * 3 / 4)
        self.maxConnections = maxConnections
        self.requestTimeout = requestTimeout
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.readThreads = readThreads
        self.writeThreads = writeThreads
        self.shutdownDelay = shutdownDelay
        self.forwardWrites = forwardWrites
        self.limits = limits
        self.nodeName = nodeName
    }

    /// Refuses settings that would silently mean something else (a port out of range, a limit of 0).
    public func validate() throws(APIError) {
        func check(_ ok: Bool, _ what: String) throws(APIError) {
            if !ok { throw APIError(.badRequest, "invalid_configuration", what) }
        }
        try check((0...65535).contains(port), "port must be in 0...65535 (0: any free port), got \(port)")
        try check(maxBodyBytes >= 1, "max body bytes must be at least 1, got \(maxBodyBytes)")
        if let collectionRate {
            try check(collectionRate.isFinite && collectionRate > 0, "collection rate must be a positive number, got \(collectionRate)")
        }
        if let collectionBurst {
            try check(collectionBurst.isFinite && collectionBurst >= 1, "collection burst must be at least 1, got \(collectionBurst)")
        }
        if let collectionBytesRate {
            try check(
                collectionBytesRate.isFinite && collectionBytesRate >= 1,
                "collection bytes rate must be at least 1, got \(collectionBytesRate)")
        }
        if let collectionBytesBurst {
            try check(
                collectionBytesBurst.isFinite && collectionBytesBurst >= 1,
                "collection bytes burst must be at least 1, got \(collectionBytesBurst)")
        }
        if let collectionBacklog {
            try check(collectionBacklog >= 1, "collection backlog must be at least 1 row, got \(collectionBacklog)")
        }
        if let nodeName {
            try check(
                (1...128).contains(nodeName.utf8.count) && nodeName.utf8.allSatisfy { (0x21...0x7E).contains($0) },
                "node name must be 1 to 128 printable ASCII characters without spaces, got '\(nodeName)'")
        }
        try check(maxInFlight >= 1, "max in flight must be at least 1, got \(maxInFlight)")
        try check(
            (1...maxInFlight).contains(maxInFlightPerKey), "max in flight per key must be in 1...\(maxInFlight), got \(maxInFlightPerKey)")
        try check(maxConnections >= 1, "max connections must be at least 1, got \(maxConnections)")
        try check((1...1024).contains(readThreads), "read threads must be in 1...1024, got \(readThreads)")
        try check((1...1024).contains(writeThreads), "write threads must be in 1...1024, got \(writeThreads)")
        for (t, name) in [(requestTimeout, "request"), (headerTimeout, "header"), (bodyTimeout, "body")] {
            try check(t.nanoseconds > 0, "the \(name) timeout must be positive")
        }
        try check(shutdownDelay.nanoseconds >= 0, "the shutdown delay cannot be negative")
        try limits.validate()
    }
}

/// What one request may ask the server for, so no request makes it allocate or send without bound.
public struct RequestLimits: Sendable {
    /// Hits one query request may return: vectors in the batch × k.
    public var maxResults: Int
    /// Ids one `get` or `delete` request may name.
    public var maxIDs: Int
    /// Documents one `scan` page may hold.
    public var maxScanLimit: Int
    /// Vector components one response may carry (`include_vectors`, `include: ["vectors"]`):
    /// 4 Mi floats is about 40 MB of JSON.
    public var maxReturnedFloats: Int

    public init(maxResults: Int = 100_000, maxIDs: Int = 10_000, maxScanLimit: Int = 10_000, maxReturnedFloats: Int = 4 << 20) {
        self.maxResults = maxResults
        self.maxIDs = maxIDs
        self.maxScanLimit = maxScanLimit
        self.maxReturnedFloats = maxReturnedFloats
    }

    func validate() throws(APIError) {
        for (v, name) in [(maxResults, "results"), (maxIDs, "ids"), (maxScanLimit, "scan limit"), (maxReturnedFloats, "returned floats")]
        where v < 1 {
            throw APIError(.badRequest, "invalid_configuration", "the limit on \(name) must be at least 1, got \(v)")
        }
    }
}

extension RequestLimits {
    /// Refuses a request whose answer would pass a limit, saying which and how to ask for less.
    func check(results: Int = 0, ids: Int = 0, scanLimit: Int64 = 1, vectors: Int = 0) throws(APIError) {
        if results > maxResults {
            throw APIError.badRequest(
                "this query asks for \(results) hits (vectors × k); the limit is \(maxResults): send fewer vectors or a smaller k")
        }
        if ids > maxIDs { throw APIError.badRequest("at most \(maxIDs) ids per request, got \(ids)") }
        if scanLimit < 1 || scanLimit > Int64(maxScanLimit) {
            throw APIError.badRequest("'limit' must be in 1...\(maxScanLimit), got \(scanLimit)")
        }
        if vectors > maxReturnedFloats {
            throw APIError.badRequest(
                "the answer would carry \(vectors) vector components; the limit is \(maxReturnedFloats): ask for fewer documents or leave vectors out"
            )
        }
    }
}
