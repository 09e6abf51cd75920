/// How to reach object storage and where to cache it, for `Database(url:options:objectStorage:)`.
/// Anything left nil comes from the environment, as the AWS SDKs read it: `AWS_ENDPOINT_URL`
/// (then path-style addressing, as local stores want), `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
public struct ObjectStorageOptions: Sendable, Equatable {
    /// The store's URL (`http://127.0.0.1:8333`); nil: `AWS_ENDPOINT_URL`, else AWS S3 in the region.
    public var endpoint: String?
    /// The region; nil: `AWS_REGION`, else `us-east-1`.
    public var region: String?
    /// Path-style addressing (`host/bucket/key`); nil: path-style exactly when an endpoint is given.
    public var pathStyle: Bool?
    /// The local directory that keeps copies of segments; nil: a folder under the temporary directory.
    /// A cache directory belongs to one location (opening another location with it is an error).
    public var cacheDirectory: String?
    /// The most bytes the cache keeps (copies in use by a search are never evicted).
    public var cacheBytes: Int
    /// The URL a writer serves its HTTP API on (`http://10.0.0.5:8080`), recorded in the manifest:
    /// query nodes ask it what it has acknowledged (strong reads without a store round trip) and
    /// forward writes to it. Nil (an embedded writer): query nodes probe the store instead.
    public var advertisedURL: String?
    /// The least time between the starts of two WAL writes (each a `PUT`): a floor on request
    /// cost under a stream of small writes, paid in latency. Default 0.
    public var walMinSpacing: Duration
    /// How long a WAL write waits at most for as many writes as the last one held to join it
    /// before its `PUT` starts (writers acknowledged by the last one are sending their next
    /// requests; a lone writer never waits). Default 20 ms.
    public var walGather: Duration
    /// How long a segment file that a compaction replaced stays in the store at least, for query
    /// nodes still reading an older manifest version (it also waits until no retained version
    /// names it). Default 10 minutes.
    public var garbageGrace: Duration

    public init(
        endpoint: String? = nil, region: String? = nil, pathStyle: Bool? = nil, cacheDirectory: String? = nil,
        cacheBytes: Int = 4 << 30, advertisedURL: String? = nil, walMinSpacing: Duration = .zero,
        walGather: Duration = .milliseconds(20), garbageGrace: Duration = .seconds(600)
    ) {
        self.garbageGrace = garbageGrace
        self.advertisedURL = advertisedURL
        self.walMinSpacing = walMinSpacing
        self.walGather = walGather
        self.endpoint = endpoint
        self.region = region
        self.pathStyle = pathStyle
        self.cacheDirectory = cacheDirectory
        self.cacheBytes = cacheBytes
    }
}
