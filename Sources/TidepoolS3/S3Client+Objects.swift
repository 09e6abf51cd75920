import NIOHTTP1

/// An object's bytes (or the range asked for) and what the store says about it.
public struct S3Object: Sendable {
    public var bytes: [UInt8]
    public var eTag: String?
    /// User metadata (`x-amz-meta-*`), names lowercased without the prefix.
    public var metadata: [String: String]
    /// The whole object's size (from `Content-Range` for a ranged read).
    public var totalSize: Int?
}

/// What a `HEAD` tells.
public struct S3ObjectInfo: Sendable {
    public var size: Int
    public var eTag: String?
    public var metadata: [String: String]
}

/// One entry of a listing.
public struct S3ObjectSummary: Sendable, Equatable {
    public var key: String
    public var size: Int
}

/// The outcome of a conditional write whose outcome is known.
public enum S3WriteOutcome: Sendable, Equatable {
    /// Written; the new object's ETag.
    case written(eTag: String?)
    /// The condition did not hold: the object exists (create) or changed (compare-and-swap).
    case conditionFailed
}

extension S3Client {
    /// Reads an object, or the bytes `range` of it (fewer at its end); nil when it does not exist.
    public func get(_ key: String, range: Range<Int>? = nil) throws -> S3Object? {
        var headers: [(name: String, value: String)] = []
        if let range {
            guard range.lowerBound >= 0, !range.isEmpty else {
                throw S3Error(.configuration, operation: "GET", url: url(key), message: "an empty or negative byte range \(range)")
            }
            headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        }
        let r = try send(Request(method: .GET, key: key, headers: headers, operation: range == nil ? "GET" : "GET range"))
        switch r.status {
        case 200, 206:
            return S3Object(
                bytes: r.body, eTag: r.headers.first(name: "etag"), metadata: Self.metadata(r.headers), totalSize: Self.totalSize(r))
        case 404 where Self.errorCode(r) != "NoSuchBucket": return nil
        case 416: return S3Object(bytes: [], eTag: r.headers.first(name: "etag"), metadata: [:], totalSize: Self.totalSize(r))
        default: throw failure(r, "GET", key: key)
        }
    }

    /// An object's size, ETag and metadata; nil when it does not exist.
    public func head(_ key: String) throws -> S3ObjectInfo? {
        let r = try send(Request(method: .HEAD, key: key, operation: "HEAD"))
        switch r.status {
        case 200:
            let size = r.headers.first(name: "content-length").flatMap { Int($0) }
            guard let size else {
                throw S3Error(.invalidResponse, operation: "HEAD", url: url(key), message: "no Content-Length in the answer")
            }
            return S3ObjectInfo(size: size, eTag: r.headers.first(name: "etag"), metadata: Self.metadata(r.headers))
        case 404: return nil
        default: throw failure(r, "HEAD", key: key)
        }
    }

    /// Writes an object whole, replacing any object of that name (retried freely: the content is fixed).
    @discardableResult
    public func put(_ key: String, _ bytes: [UInt8], metadata: [String: String] = [:]) throws -> String? {
        let r = try send(Request(method: .PUT, key: key, headers: Self.metadataHeaders(metadata), body: bytes, operation: "PUT"))
        guard (200..<300).contains(r.status) else { throw failure(r, "PUT", key: key) }
        return r.headers.first(name: "etag")
    }

    /// Creates an object only if none of that name exists (`If-None-Match: *`): the commit point
    /// of a WAL slot or a manifest version. Throws `unknownOutcome` when it cannot tell.
    public func create(_ key: String, _ bytes: [UInt8], metadata: [String: String] = [:]) throws -> S3WriteOutcome {
        try conditionalPut(key, bytes, condition: ("if-none-match", "*"), metadata: metadata, operation: "PUT if absent")
    }

    /// Replaces an object only if its ETag is still `eTag` (`If-Match`): compare-and-swap.
    /// Throws `unknownOutcome` when it cannot tell.
    public func replace(_ key: String, _ bytes: [UInt8], ifMatch eTag: String, metadata: [String: String] = [:]) throws -> S3WriteOutcome {
        try conditionalPut(key, bytes, condition: ("if-match", eTag), metadata: metadata, operation: "PUT if unchanged")
    }

    private func conditionalPut(
        _ key: String, _ bytes: [UInt8], condition: (String, String), metadata: [String: String], operation: String
    ) throws -> S3WriteOutcome {
        let headers = [condition] + Self.metadataHeaders(metadata)
        let r = try send(Request(method: .PUT, key: key, headers: headers, body: bytes, operation: operation, retry: .conditional))
        switch r.status {
        case 200..<300: return .written(eTag: r.headers.first(name: "etag"))
        case 412: return .conditionFailed
        // A concurrent conditional write won the race (S3's ConditionalRequestConflict, retried
        // above until attempts ran out): ours was not applied.
        case 409 where Self.errorCode(r) == "ConditionalRequestConflict": return .conditionFailed
        default: throw failure(r, operation, key: key)
        }
    }

    /// Copies object `source` of this bucket to `key` inside the store (CopyObject): no byte of it
    /// passes through this client. Replaces any object at `key`; the copy keeps the source's
    /// metadata. Retried freely (the result is the same). S3 may answer 200 with an error in the
    /// body: that is a failure too.
    public func copy(from source: String, to key: String) throws {
        let header = (name: "x-amz-copy-source", value: "/" + bucket + "/" + S3Encoding.path(source))
        let r = try send(Request(method: .PUT, key: key, headers: [header], operation: "CopyObject"))
        guard (200..<300).contains(r.status), !String(decoding: r.body.prefix(512), as: UTF8.self).contains("<Error>") else {
            throw failure(r, "CopyObject", key: key)
        }
    }

    /// Deletes an object; a missing one is not an error.
    public func delete(_ key: String) throws {
        let r = try send(Request(method: .DELETE, key: key, operation: "DELETE"))
        guard (200..<300).contains(r.status) || r.status == 404 else { throw failure(r, "DELETE", key: key) }
    }

    /// Every object whose key starts with `prefix` (after `startAfter`, if given), in key order,
    /// following continuation tokens, `pageSize` keys a request; at most `limit` entries. With a
    /// `delimiter`, keys holding it past the prefix are rolled up into one entry per common
    /// prefix (ending in the delimiter, size 0), as folders.
    public func list(
        prefix: String, startAfter: String? = nil, limit: Int = .max, pageSize: Int = 1000, delimiter: String? = nil
    ) throws -> [S3ObjectSummary] {
        var out: [S3ObjectSummary] = []
        var token: String?
        repeat {
            var query: [(String, String)] = [
                ("list-type", "2"), ("prefix", prefix), ("max-keys", String(min(pageSize, 1000, max(1, limit - out.count)))),
            ]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let token {
                query.append(("continuation-token", token))
            } else if let startAfter {
                query.append(("start-after", startAfter))
            }
            let r = try send(Request(method: .GET, key: nil, query: query, operation: "ListObjectsV2"))
            guard r.status == 200 else { throw failure(r, "ListObjectsV2", key: nil) }
            let page: S3XML.ListBucketResult
            do { page = try S3XML.decode(S3XML.ListBucketResult.self, r.body) } catch {
                throw S3Error(.invalidResponse, operation: "ListObjectsV2", url: url(nil), message: "the listing does not parse: \(error)")
            }
            out += (page.contents ?? []).map { S3ObjectSummary(key: $0.key, size: $0.size) }
            out += (page.commonPrefixes ?? []).map { S3ObjectSummary(key: $0.prefix, size: 0) }
            token = page.isTruncated ? page.nextContinuationToken : nil
            if page.isTruncated, token == nil {
                throw S3Error(
                    .invalidResponse, operation: "ListObjectsV2", url: url(nil), message: "a truncated listing without a continuation token"
                )
            }
        } while token != nil && out.count < limit
        return out
    }

    // MARK: - Helpers

    static func metadataHeaders(_ metadata: [String: String]) -> [(name: String, value: String)] {
        metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-" + $0.key.lowercased(), $0.value) }
    }

    static func metadata(_ headers: HTTPHeaders) -> [String: String] {
        var out: [String: String] = [:]
        for (name, value) in headers where name.lowercased().hasPrefix("x-amz-meta-") {
            out[String(name.lowercased().dropFirst("x-amz-meta-".count))] = value
        }
        return out
    }

    /// The whole size from `Content-Range: bytes a-b/total`, or `Content-Length` for a whole read.
    static func totalSize(_ r: Response) -> Int? {
        if let range = r.headers.first(name: "content-range"), let slash = range.lastIndex(of: "/") {
            return Int(range[range.index(after: slash)...])
        }
        return r.status == 200 ? r.body.count : nil
    }
}
