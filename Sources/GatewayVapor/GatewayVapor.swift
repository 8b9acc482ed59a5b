#if Vapor
public import Gateway
import GatewayBridging
import HTTPTypes
import Logging
import NIOCore
public import Vapor

/// A Vapor 4 `Application`'s routes served as a gateway application, so an existing Vapor app
/// runs behind nginx or Apache over FastCGI, or as CGI, without its own HTTP server:
///
/// ```swift
/// let app = try await Application.make(.detect())
/// try configure(app)            // the app's routes and middleware, unchanged
/// try await app.asyncBoot()     // instead of app.execute(): no HTTP server starts
/// await serve(GatewayVapor(app))
/// try await app.asyncShutdown()
/// ```
///
/// Each request goes through the application's responder (its middleware, router and error
/// handling) as a Vapor `Request` made from ``Environ/request`` (the mount point,
/// `SCRIPT_NAME`, taken off the path), ``Environ/logger`` and the client's address.
///
/// Bodies: Vapor 4 makes a streaming request body only inside its HTTP server (the type is
/// internal), so the body is read into memory first, at most the application's
/// `routes.defaultMaxBodySize` (past it the gateway answers `413`). The response body
/// streams: Vapor's streaming bodies (`Response.Body(stream:)`, `Response.Body(asyncStream:)`,
/// `req.fileio.streamFile`) are written through the gateway's writer one buffer at a time,
/// and stop with an error when the client is gone.
public struct GatewayVapor: GatewayApplication {
    /// The booted Vapor application whose responder answers.
    public let application: Application

    /// Serves `application`'s routes. Boot it first (`asyncBoot()`); do not start its server.
    public init(_ application: Application) {
        self.application = application
    }

    /// Runs the application's responder for one request.
    nonisolated(nonsending) public func respond(to environ: Environ) async throws -> GatewayResponse {
        let eventLoop = application.eventLoopGroup.any()
        let head = environ.mountedRequest
        let limit = application.routes.defaultMaxBodySize.value
        let body = try await environ.input.collect(upTo: limit)
        var headers = HTTPHeaders(head.headerFields.map { ($0.name.rawName, $0.value) })
        if let authority = head.authority { headers.replaceOrAdd(name: .host, value: authority) }
        let request = Request(
            application: application,
            method: HTTPMethod(rawValue: head.method.rawValue),
            url: URI(string: head.path ?? "/"),
            version: .http1_1,
            headersNoUpdate: headers,
            collectedBody: body.isEmpty && environ.input.declaredLength == nil ? nil : ByteBuffer(bytes: body),
            remoteAddress: Self.address(host: environ.remoteAddress, port: environ["REMOTE_PORT"]),
            logger: environ.logger,
            byteBufferAllocator: application.allocator,
            on: eventLoop
        )
        let response = try await application.responder.current.respond(to: request).get()
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        let code = Int(response.status.code)
        // HTTPResponse.Status traps outside 100…999; Vapor's HTTPStatus takes any UInt.
        guard (100...999).contains(code) else { throw InvalidStatus(code: code) }
        return GatewayResponse(
            status: HTTPResponse.Status(code: code, reasonPhrase: response.status.reasonPhrase),
            headers: fields,
            body: Self.body(of: response.body, on: eventLoop)
        )
    }

    /// The response body as the gateway's: bytes in memory as they are, a stream through a
    /// ``BufferHandoff``.
    static func body(of body: Response.Body, on eventLoop: any EventLoop) -> GatewayResponseBody {
        if let buffer = body.buffer { return GatewayResponseBody(bytes: buffer.withUnsafeReadableBytes { Array($0) }) }
        let count = body.count
        let length = count >= 0 ? count : nil
        guard let stream = VaporBodyStream(body) else {
            // A storage this version does not know: collected, as Vapor's own `collect` does.
            return GatewayResponseBody(contentLength: length) { writer in
                if let buffer = try await body.collect(on: eventLoop).get(), buffer.readableBytes > 0 {
                    try await writer.write(buffer.withUnsafeReadableBytes { Array($0) })
                }
            }
        }
        return GatewayResponseBody(contentLength: length) { writer in
            let handoff = BufferHandoff()
            let producer = Task {
                switch stream {
                case .callback(let callback):
                    await HandoffBodyWriter.run(callback, on: eventLoop, into: handoff)
                case .asyncCallback(let callback):
                    do {
                        try await callback(HandoffAsyncBodyWriter(handoff: handoff))
                        handoff.finish()
                    } catch {
                        handoff.finish(throwing: error)
                    }
                }
            }
            defer {
                handoff.abandon()
                producer.cancel()
            }
            while let buffer = try await handoff.next() {
                try await writer.write(buffer.withUnsafeReadableBytes { Array($0) })
            }
        }
    }

    /// A response status no HTTP response can carry (outside 100…999); the gateway answers 500.
    struct InvalidStatus: Error, CustomStringConvertible {
        let code: Int
        var description: String { "the Vapor app answered status \(code), outside 100…999" }
    }

    /// The address `host` and `port` name, nil when either is missing or not numeric.
    static func address(host: String?, port: String?) -> SocketAddress? {
        guard let host, let port, let number = Int(port), (0...65535).contains(number) else { return nil }
        return try? SocketAddress(ipAddress: host, port: number)
    }
}
#endif
