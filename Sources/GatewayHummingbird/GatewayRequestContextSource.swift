#if Hummingbird
public import Gateway
public import Hummingbird
public import Logging
public import NIOCore

/// What a Hummingbird request context can be made from when it is served through the
/// gateway and wants more than `ApplicationRequestContextSource` gives: the whole
/// ``Environ`` (CGI variables such as `REMOTE_USER` or `HTTPS`, the request id), the
/// request's logger and its ``GatewayRequestChannel``.
///
/// ``GatewayRequestContext`` is the ready-made context built from it.
public struct GatewayRequestContextSource: RequestContextSource {
    /// The request as the web server described it.
    public let environ: Environ
    /// ``Environ/logger`` with Hummingbird's `hb.request.id` metadata.
    public let logger: Logger
    /// The request's channel: its addresses and an event loop.
    public let channel: GatewayRequestChannel

    /// A source for one request.
    public init(environ: Environ, logger: Logger, channel: GatewayRequestChannel) {
        self.environ = environ
        self.logger = logger
        self.channel = channel
    }
}

/// The request context of an app that is only ever served through the gateway: like
/// `BasicRequestContext`, plus the request's ``Environ`` and the client's address (for
/// Hummingbird's `TracingMiddleware` and the app's own use).
public struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    /// What the gateway makes each request's context from.
    public typealias Source = GatewayRequestContextSource
    /// Hummingbird's per-request storage (logger, path parameters).
    public var coreContext: CoreRequestContextStorage
    /// The request as the web server described it.
    public let environ: Environ
    /// The client's address, from `REMOTE_ADDR` and `REMOTE_PORT`.
    public let remoteAddress: SocketAddress?

    /// Makes the context of one request.
    public init(source: GatewayRequestContextSource) {
        self.coreContext = CoreRequestContextStorage(source: source)
        self.environ = source.environ
        self.remoteAddress = source.channel.remoteAddress
    }
}
#endif
