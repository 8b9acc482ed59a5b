#if Hummingbird
public import Gateway
import GatewayBridging
public import Hummingbird
import Logging
import NIOCore
import NIOPosix

/// A Hummingbird 2 router or `HTTPResponder` served as a gateway application, so an existing
/// Hummingbird app runs behind nginx or Apache over FastCGI, or as CGI, without a rewrite:
///
/// ```swift
/// let router = Router()
/// router.get("hello") { _, _ in "Hello, world!" }
/// await serve(GatewayHummingbird(router))
/// ```
///
/// Each request becomes a Hummingbird `Request`: its head is ``Environ/request`` with the
/// mount point (`SCRIPT_NAME`) taken off the path, its body streams from ``Environ/input``
/// chunk by chunk (never collected here), and the context is made from a source carrying
/// ``Environ/logger`` (with Hummingbird's `hb.request.id` set to the gateway's request id)
/// and the client's address. The response's head and body go back as they are; a streaming
/// body is written through the gateway's writer as the handler writes it, so a slow client
/// slows the handler down.
///
/// Contexts built from `ApplicationRequestContextSource` (`BasicRequestContext` and most
/// apps' own) get a ``GatewayRequestChannel`` for the request; contexts built from
/// ``GatewayRequestContextSource`` also see the whole ``Environ``.
public struct GatewayHummingbird<Responder: HTTPResponder>: GatewayApplication {
    /// The app's responder, built once from its router.
    public let responder: Responder
    private let makeContext: @Sendable (Environ, Logger, GatewayRequestChannel) -> Responder.Context

    /// Serves `responder`, whose context is made from `ApplicationRequestContextSource`.
    public init(_ responder: Responder)
    where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        self.responder = responder
        self.makeContext = { _, logger, channel in
            Responder.Context(source: ApplicationRequestContextSource(channel: channel, logger: logger))
        }
    }

    /// Serves the responder `router` builds, whose context is made from
    /// `ApplicationRequestContextSource` (a `Router<BasicRequestContext>`, for one).
    public init<Builder: HTTPResponderBuilder>(_ router: Builder)
    where Builder.Responder == Responder, Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        self.init(router.buildResponder())
    }

    /// Serves `responder`, whose context is made from ``GatewayRequestContextSource``.
    public init(_ responder: Responder)
    where Responder.Context: InitializableFromSource<GatewayRequestContextSource> {
        self.responder = responder
        self.makeContext = { environ, logger, channel in
            Responder.Context(source: GatewayRequestContextSource(environ: environ, logger: logger, channel: channel))
        }
    }

    /// Serves the responder `router` builds, whose context is made from ``GatewayRequestContextSource``.
    public init<Builder: HTTPResponderBuilder>(_ router: Builder)
    where Builder.Responder == Responder, Responder.Context: InitializableFromSource<GatewayRequestContextSource> {
        self.init(router.buildResponder())
    }

    /// Runs the responder for one request and hands its response to the gateway.
    ///
    /// An error the responder throws (Hummingbird's router already turned `HTTPResponseError`s
    /// into responses) is thrown on, so the gateway logs it and answers `500`, as
    /// Hummingbird's own server answers an unrecognised error.
    nonisolated(nonsending) public func respond(to environ: Environ) async throws -> GatewayResponse {
        // Hummingbird's `context.id` force-unwraps this key: kept whatever the handler does.
        let logger = environ.logger.keeping("\(environ.requestID)", at: "hb.request.id")
        let channel = GatewayRequestChannel(
            remoteAddress: GatewayRequestChannel.address(host: environ.remoteAddress, port: environ["REMOTE_PORT"]),
            localAddress: GatewayRequestChannel.address(host: environ["SERVER_ADDR"], port: environ["SERVER_PORT"]),
            eventLoop: MultiThreadedEventLoopGroup.singleton.any()
        )
        let request = Request(
            head: environ.mountedRequest,
            body: RequestBody(asyncSequence: GatewayRequestBodyBuffers(body: environ.input))
        )
        let response: Response
        do {
            response = try await responder.respond(to: request, context: makeContext(environ, logger, channel))
        } catch {
            channel.finish()
            throw error
        }
        let body = response.body
        return GatewayResponse(
            status: response.status,
            headers: response.headers,
            body: GatewayResponseBody(contentLength: body.contentLength) { writer in
                defer { channel.finish() }
                let destination = GatewayResponseBodyWriterBox(writer)
                defer { writer = destination.writer }
                try await body.write(HummingbirdBodyWriter(destination: destination))
            }
        )
    }
}
#endif
