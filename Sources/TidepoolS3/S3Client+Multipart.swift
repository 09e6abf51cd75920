import Foundation

/// Multipart upload, for objects too large for one PUT: parts uploaded in parallel, then
/// completed in one request; a failure aborts the upload so no parts are left billed.
extension S3Client {
    /// Objects at least this large are uploaded in parts.
    public static let multipartThreshold = 64 << 20
    /// The size of each part but the last (S3 wants at least 5 MiB).
    public static let partSize = 16 << 20

    /// Writes an object of any size: one PUT below `threshold`, otherwise a multipart upload of
    /// `partSize` parts (at least 5 MiB), up to `parallelism` in flight. Replaces any object of
    /// that name, unless `ifAbsent`: then it is created only if none exists (`If-None-Match: *` on
    /// the PUT, or on the completion of the parts), and `.conditionFailed` says one did.
    @discardableResult
    public func upload(
        _ key: String, _ bytes: [UInt8], metadata: [String: String] = [:], ifAbsent: Bool = false,
        partSize: Int = S3Client.partSize, threshold: Int = S3Client.multipartThreshold, parallelism: Int = 4
    ) throws -> S3WriteOutcome {
        guard partSize >= 5 << 20 else {
            throw S3Error(.configuration, operation: "upload", url: url(key), message: "parts must be at least 5 MiB")
        }
        guard bytes.count >= threshold else {
            if ifAbsent { return try create(key, bytes, metadata: metadata) }
            return .written(eTag: try put(key, bytes, metadata: metadata))
        }
        let uploadID = try startMultipart(key, metadata: metadata)
        do {
            let ranges = stride(from: 0, to: bytes.count, by: partSize).map { $0..<min(bytes.count, $0 + partSize) }
            var eTags = [String?](repeating: nil, count: ranges.count)
            var firstError: (any Error)?
            // Parts go in waves of `parallelism`, each part on its own thread (calls block).
            for wave in stride(from: 0, to: ranges.count, by: max(1, parallelism)) {
                let indices = wave..<min(ranges.count, wave + max(1, parallelism))
                let results = runOnThreads(indices.count) { j in
                    let i = indices.lowerBound + j
                    return try self.uploadPart(key, uploadID: uploadID, number: i + 1, Array(bytes[ranges[i]]))
                }
                for (j, r) in results.enumerated() {
                    switch r {
                    case .success(let e): eTags[indices.lowerBound + j] = e
                    case .failure(let e): firstError = firstError ?? e
                    }
                }
                if let firstError { throw firstError }
            }
            let parts = try eTags.enumerated().map { (i, e) -> S3XML.CompleteMultipartUpload.Part in
                guard let e else {
                    throw S3Error(.invalidResponse, operation: "UploadPart", url: url(key), message: "part \(i + 1) has no ETag")
                }
                return .init(partNumber: i + 1, eTag: e)
            }
            let outcome = try completeMultipart(key, uploadID: uploadID, parts: parts, ifAbsent: ifAbsent)
            if outcome == .conditionFailed { try? abortMultipart(key, uploadID: uploadID) }
            return outcome
        } catch {
            try? abortMultipart(key, uploadID: uploadID)
            throw error
        }
    }

    func startMultipart(_ key: String, metadata: [String: String]) throws -> String {
        let r = try send(
            Request(
                method: .POST, key: key, query: [("uploads", "")], headers: Self.metadataHeaders(metadata),
                operation: "CreateMultipartUpload"))
        guard r.status == 200 else { throw failure(r, "CreateMultipartUpload", key: key) }
        do { return try S3XML.decode(S3XML.InitiateMultipartUploadResult.self, r.body).uploadId } catch {
            throw S3Error(
                .invalidResponse, operation: "CreateMultipartUpload", url: url(key), message: "no upload id in the answer: \(error)")
        }
    }

    func uploadPart(_ key: String, uploadID: String, number: Int, _ bytes: [UInt8]) throws -> String {
        let r = try send(
            Request(
                method: .PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: bytes,
                operation: "UploadPart"))
        guard r.status == 200, let eTag = r.headers.first(name: "etag") else { throw failure(r, "UploadPart", key: key) }
        return eTag
    }

    func completeMultipart(
        _ key: String, uploadID: String, parts: [S3XML.CompleteMultipartUpload.Part], ifAbsent: Bool
    ) throws -> S3WriteOutcome {
        let body = try S3XML.encodeCompletion(parts)
        var headers: [(name: String, value: String)] = [("content-type", "application/xml")]
        if ifAbsent { headers.append(("if-none-match", "*")) }
        let r = try send(
            Request(
                method: .POST, key: key, query: [("uploadId", uploadID)], headers: headers, body: body,
                operation: "CompleteMultipartUpload", retry: ifAbsent ? .conditional : .idempotent))
        if r.status == 412 { return .conditionFailed }
        // S3 can answer 200 with an error in the body.
        guard r.status == 200, Self.errorCode(Response(status: 400, headers: r.headers, body: r.body)) == nil else {
            throw failure(
                Response(status: r.status == 200 ? 500 : r.status, headers: r.headers, body: r.body), "CompleteMultipartUpload", key: key)
        }
        return .written(eTag: r.headers.first(name: "etag"))
    }

    func abortMultipart(_ key: String, uploadID: String) throws {
        let r = try send(Request(method: .DELETE, key: key, query: [("uploadId", uploadID)], operation: "AbortMultipartUpload"))
        guard (200..<300).contains(r.status) || r.status == 404 else { throw failure(r, "AbortMultipartUpload", key: key) }
    }
}
