import Foundation
import Hummingbird
import NIOCore
import Tidepool

/// An error answered as `{"error": {"code": "...", "message": "..."}}` with an HTTP status.
/// Codes are stable; messages are for people.
public struct APIError: Error, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503 answers.
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ m: String) -> APIError { APIError(.badRequest, "invalid_request", m) }

    static func deadlineExceeded(_ timeout: TimeAmount) -> APIError {
        APIError(
            .serviceUnavailable, "deadline_exceeded",
            "the request took longer than the server's limit of \(Double(timeout.nanoseconds) / 1e9) s and was abandoned; ask for less work"
        )
    }

    /// Maps an engine error to its HTTP form.
    static func from(_ e: Error) -> APIError {
        if let a = e as? APIError { return a }
        guard let t = e as? TidepoolError else { return APIError(.internalServerError, "internal", "\(e)") }
        switch t {
        case .invalidArgument(let m): return APIError(.badRequest, "invalid_argument", m)
        case .dimensionMismatch: return APIError(.badRequest, "dimension_mismatch", t.description)
        case .collectionNotFound: return APIError(.notFound, "collection_not_found", t.description)
        case .collectionExists: return APIError(.conflict, "collection_exists", t.description)
        case .closed: return APIError(.serviceUnavailable, "unavailable", t.description)
        case .readOnly: return APIError(.forbidden, "read_only", t.description)
        case .deadlineExceeded: return APIError(.serviceUnavailable, "deadline_exceeded", t.description)
        case .locked, .corrupt, .io: return APIError(.internalServerError, "storage_error", t.description)
        // The object store failed or could not be reached: worth retrying later.
        case .storage: return APIError(.serviceUnavailable, "storage_unavailable", t.description)
        case .fenced: return APIError(.serviceUnavailable, "not_the_writer", t.description)
        case .notFound: return APIError(.notFound, "not_found", t.description)
        case .alreadyExists: return APIError(.conflict, "already_exists", t.description)
        }
    }

    func response() -> Response {
        let body = jsonBytes(["error": ["code": code, "message": message]])
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

func jsonBytes(_ object: Any) -> [UInt8] { JSONWriter.encode(object) }

func jsonResponse(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: jsonBytes(object))))
}
