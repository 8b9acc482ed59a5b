#if OpenAPI
public import Gateway
import GatewayBridging
public import HTTPTypes
public import OpenAPIRuntime
import Synchronization

/// A swift-openapi-runtime `ServerTransport` that is itself a gateway application, so a
/// generated `APIProtocol` implementation is served behind nginx or Apache over FastCGI, or
/// as CGI, without another HTTP server:
///
/// ```swift
/// let transport = GatewayOpenAPITransport()
/// try MyAPI().registerHandlers(on: transport)
/// await serve(transport)
/// ```
///
/// Each request is matched against the registered operations' method and path template
/// (`/users/{id}`), with the mount point (`SCRIPT_NAME`) taken off the path; the template's
/// parameters go into `ServerRequestMetadata.pathParameters`. The request body reaches the
/// handler as an `HTTPBody` reading ``Environ/input`` as it arrives (iterable once, its
/// length the declared `CONTENT_LENGTH`), and the response's `HTTPBody` is written through
/// the gateway's writer chunk by chunk. No operation for the path answers `404`; operations
/// for the path but not the method answer `405` with `Allow`.
public final class GatewayOpenAPITransport: ServerTransport, GatewayApplication {
    /// A registered operation.
    struct Operation: Sendable {
        let method: HTTPRequest.Method
        let path: PathTemplate
        let handler: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    }

    /// Registered operations, in registration order (the first match wins). Written while
    /// handlers are registered, read by every request.
    private let operations = Mutex<[Operation]>([])

    /// Thrown by ``register(_:method:path:)`` for a template this transport cannot match.
    public struct InvalidPathTemplate: Error, CustomStringConvertible {
        /// The template as given.
        public let template: String
        /// What is wrong, for the error message at registration.
        public var description: String { "invalid OpenAPI path template \(template)" }
    }

    /// An empty transport: register the API's handlers on it, then serve it.
    public init() {}

    /// Registers one operation (called by the generated `registerHandlers(on:)`).
    public func register(
        _ handler:
            @Sendable @escaping (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (
                HTTPResponse, HTTPBody?
            ),
        method: HTTPRequest.Method,
        path: String
    ) throws {
        guard let template = PathTemplate(path) else { throw InvalidPathTemplate(template: path) }
        operations.withLock { $0.append(Operation(method: method, path: template, handler: handler)) }
    }

    /// Finds the operation for the request and runs it.
    nonisolated(nonsending) public func respond(to environ: Environ) async throws -> GatewayResponse {
        let request = environ.mountedRequest
        let target = request.path ?? "/"
        let pathOnly = target[..<(target.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? target.endIndex)]
        var allowed: [HTTPRequest.Method] = []
        var found: (Operation, [String: Substring])?
        for operation in operations.withLock({ $0 }) {
            guard let parameters = operation.path.match(pathOnly) else { continue }
            if operation.method == request.method {
                found = (operation, parameters)
                break
            }
            allowed.append(operation.method)
        }
        guard let (operation, parameters) = found else {
            if allowed.isEmpty { return .text("Not Found\n", status: .notFound) }
            var response = GatewayResponse.text("Method Not Allowed\n", status: .methodNotAllowed)
            response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return response
        }
        let body: HTTPBody? = Self.requestBody(environ)
        let (head, responseBody) = try await operation.handler(
            request,
            body,
            ServerRequestMetadata(pathParameters: parameters)
        )
        return GatewayResponse(
            status: head.status,
            headers: head.headerFields,
            body: Self.responseBody(responseBody)
        )
    }

    /// The request body as an `HTTPBody`: nil when the request declares none
    /// (`CONTENT_LENGTH` 0, or absent on a method that carries no body).
    static func requestBody(_ environ: Environ) -> HTTPBody? {
        let declared = environ.input.declaredLength
        if declared == 0 { return nil }
        if declared == nil, let method = environ.method, [.get, .head, .delete, .options].contains(method) {
            return nil
        }
        return HTTPBody(
            environ.input,
            length: declared.map { .known(Int64($0)) } ?? .unknown,
            iterationBehavior: .single
        )
    }

    /// The handler's body as the gateway's, streamed chunk by chunk.
    static func responseBody(_ body: HTTPBody?) -> GatewayResponseBody {
        guard let body else { return .empty }
        var length: Int?
        if case .known(let known) = body.length, known >= 0, known <= Int64(Int.max) { length = Int(known) }
        return GatewayResponseBody(contentLength: length) { writer in
            for try await chunk in body where !chunk.isEmpty {
                try await writer.write(Array(chunk))
            }
        }
    }
}
#endif
