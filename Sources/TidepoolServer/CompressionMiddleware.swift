import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// gzip both ways. A request body sent with `Content-Encoding: gzip` is inflated before any route
/// reads it, to at most the body limit (a small bomb cannot become a large body); any other
/// encoding is refused with 415. An answer of 1 KiB or more goes out gzipped when the request's
/// `Accept-Encoding` takes gzip (and is sent as it is otherwise: on loopback, compressing costs
/// more than it saves, so the Python client asks for it only with `compression=True`). Inflating
/// and deflating (tens of megabytes at most) run on NIO's blocking pool, never on the threads that
/// serve connections and Swift concurrency.
struct CompressionMiddleware: RouterMiddleware {
    typealias Context = TidepoolRequestContext
    let maxBody: Int
    /// Answers smaller than this go out as they are.
    static let minimumCompressed = 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        if let encoding = request.headers[.contentEncoding]?.trimmingCharacters(in: .whitespaces).lowercased(), encoding != "identity" {
            guard encoding == "gzip" else {
                throw APIError(
                    .unsupportedMediaType, "unsupported_encoding", "Content-Encoding '\(encoding)' is not supported; send gzip or identity")
            }
            let compressed: ByteBuffer
            do { compressed = try await request.body.collect(upTo: maxBody) } catch is NIOTooManyBytesError {
                throw APIError(.contentTooLarge, "body_too_large", "request body is larger than \(maxBody) bytes")
            }
            let body: ByteBuffer
            let limit = maxBody
            do {
                body = try await NIOThreadPool.singleton.runIfActive {
                    var input = compressed
                    return try input.decompress(with: .gzip(), maxSize: limit)
                }
            } catch let e as CompressNIOError where e == .bufferOverflow {
                throw APIError(.contentTooLarge, "body_too_large", "request body inflates past \(maxBody) bytes")
            } catch {
                throw APIError(.badRequest, "malformed_body", "the request body is not valid gzip (\(error))")
            }
            var head = request.head
            head.headerFields[.contentEncoding] = nil
            head.headerFields[.contentLength] = String(body.readableBytes)
            request = Request(head: head, body: RequestBody(buffer: body))
        }
        let response = try await next(request, context)
        guard acceptsGzip(request.headers[.acceptEncoding]), response.headers[.contentEncoding] == nil,
            let length = response.body.contentLength, length >= CompressionMiddleware.minimumCompressed
        else { return response }
        var gzipped = response
        gzipped.headers[.contentEncoding] = "gzip"
        gzipped.headers[.contentLength] = nil
        gzipped.headers[values: .vary] = ["Accept-Encoding"]
        let original = response.body
        gzipped.body = ResponseBody { writer in
            let collected = Collected()
            try await original.write(CollectingWriter(into: collected))
            let plain = collected.buffer
            let gzipped = try await NIOThreadPool.singleton.runIfActive {
                var input = plain
                return try input.compress(with: .gzip())
            }
            try await writer.write(gzipped)
            try await writer.finish(nil)
        }
        return gzipped
    }

    /// Whether an Accept-Encoding header takes gzip (`gzip`, `gzip;q=0.5`, `*`; not `gzip;q=0`).
    func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        for part in header.split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let name = fields.first, name == "gzip" || name == "*" else { continue }
            let q = fields.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if q > 0 { return true }
        }
        return false
    }
}

/// An answer's body (built in memory by the routes anyway), collected to be compressed whole.
private final class Collected: @unchecked Sendable {
    var buffer = ByteBuffer()
}

private struct CollectingWriter: ResponseBodyWriter {
    let into: Collected
    mutating func write(_ part: ByteBuffer) async throws {
        var part = part
        into.buffer.writeBuffer(&part)
    }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
