import Foundation
import HTTPTypes
import Hummingbird
import Tidepool

/// Authentication and error mapping around every route but `/health` and `/ready`: the caller's
/// key goes into the request context, and every thrown error becomes the JSON error body.
/// Admission (in-flight limits) happens later, in `EngineExecutor`, once a body has arrived.
struct GuardMiddleware: RouterMiddleware {
    typealias Context = TidepoolRequestContext
    let keys: APIKeyring

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/health" || path == "/ready" { return try await next(request, context) }
        var context = context
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else {
            return APIError(.unauthorized, "unauthorized", "missing 'Authorization: Bearer <key>' header").response()
        }
        guard let key = keys.lookup(String(auth.dropFirst(7))) else {
            return APIError(.unauthorized, "unauthorized", "unknown API key").response()
        }
        context.apiKey = key
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .contentTooLarge {
            return APIError(.contentTooLarge, "body_too_large", "request body is larger than the configured limit").response()
        } catch let e as HTTPError where e.status == .notFound {
            return APIError(.notFound, "not_found", "no route \(request.method) \(path)").response()
        } catch let e as HTTPError {
            return APIError(e.status, "http_error", e.body ?? "\(e.status)").response()
        } catch {
            return APIError.from(error).response()
        }
    }
}

/// Names the node in every response (`X-Tidepool-Node`): behind a load balancer, which node answered.
struct NodeNameMiddleware: RouterMiddleware {
    typealias Context = TidepoolRequestContext
    let name: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if let field = HTTPField.Name("X-Tidepool-Node") { response.headers[field] = name }
        return response
    }
}

/// Per-request state: the caller's key once authenticated.
public struct TidepoolRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var apiKey: APIKey?

    public init(source: Source) {
        coreContext = .init(source: source)
        apiKey = nil
    }
}
