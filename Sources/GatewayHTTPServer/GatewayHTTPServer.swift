public import Gateway
public import Logging
public import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle

/// Serves a `GatewayApplication` over HTTP/1.1, **for development only**: production goes
/// behind nginx or Apache over FastCGI.
///
/// It fills the environ as nginx's `fastcgi_params` (with the repository's
/// `nginx/fastcgi-unix.conf`) would, and runs the application through the same
/// `ResponseDriver` as the FastCGI and CGI servers, so an app behaves the same locally and
/// behind nginx. Bodies stream both ways with backpressure; responses without a known length
/// go out chunked.
///
/// A swift-service-lifecycle `Service`: run it in a `ServiceGroup`; graceful shutdown stops
/// accepting, lets requests in flight finish (within ``HTTPServerLimits/shutdownGracePeriod``)
/// and returns.
///
/// ```swift
/// let server = GatewayHTTPServer(application: app, host: "127.0.0.1", port: 8080, logger: logger)
/// let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public struct GatewayHTTPServer<App: GatewayApplication>: Service {
    /// The application every request runs.
    public let application: App
    /// The host (name or address) to listen on; also the requests' `SERVER_NAME`.
    public let host: String
    /// The port to listen on; 0 lets the kernel pick one (see ``localAddress``).
    public let port: Int
    /// Bounds on what clients can make the server hold, and its timeouts.
    public let limits: HTTPServerLimits
    /// Where the server logs (its URL once listening, malformed requests, application errors).
    public let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let listening = ListeningAddress()

    /// A server for `application` on `host`:`port`; it listens once ``run()`` is called.
    public init(
        application: App,
        host: String = "127.0.0.1",
        port: Int = 8080,
        logger: Logger = Logger(label: "swift-gateway.http"),
        limits: HTTPServerLimits = HTTPServerLimits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.application = application
        self.host = host
        self.port = port
        self.logger = logger
        self.limits = limits
        self.eventLoopGroup = eventLoopGroup
    }

    /// A server for `application` on `address`, e.g. the value of a `--http` flag parsed with
    /// ``HTTPServerAddress/init(parsing:)``.
    public init(
        application: App,
        address: HTTPServerAddress,
        logger: Logger = Logger(label: "swift-gateway.http"),
        limits: HTTPServerLimits = HTTPServerLimits()
    ) {
        self.init(application: application, host: address.host, port: address.port, logger: logger, limits: limits)
    }

    /// The address the server listens on, once ``run()`` has bound it (waits until then).
    /// Throws the bind error when it could not listen. Tests read the kernel-chosen port here.
    public var localAddress: SocketAddress {
        get async throws { try await listening.wait() }
    }

    /// Listens and serves until graceful shutdown is triggered (or the task is cancelled).
    public func run() async throws {
        let state = HTTPServerState(limits: limits, logger: logger, serverName: host)
        let serverChannel: any Channel
        do {
            serverChannel = try await bind(state: state)
        } catch {
            listening.resolve(.failure(error))
            throw error
        }
        guard let address = serverChannel.localAddress else {
            listening.resolve(.failure(ChannelError.unknownLocalAddress))
            throw ChannelError.unknownLocalAddress
        }
        logger.info(
            "Serving \(Self.url(of: address, host: host)) — for development only; deploy behind nginx or Apache over FastCGI"
        )
        listening.resolve(.success(address))

        await withTaskCancellationOrGracefulShutdownHandler {
            try? await serverChannel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            serverChannel.close(promise: nil)
        }
        try? await serverChannel.close()
        await drain(state: state)
        logger.info("HTTP server stopped")
    }

    /// `http://host:port`, with the port actually bound and IPv6 addresses in brackets.
    static func url(of address: SocketAddress, host: String) -> String {
        let port = address.port ?? 0
        let name = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "http://\(name):\(port)"
    }

    private func bind(state: HTTPServerState) async throws -> any Channel {
        let application = self.application
        let headerLimit = limits.effectiveMaxHeaderBytes
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var decoderLimits = NIOHTTPDecoderLimitConfiguration()
                    decoderLimits.maxHeaderFieldSize = headerLimit
                    decoderLimits.maxHeaderListSize = headerLimit
                    let handlers = channel.pipeline.syncOperations
                    try handlers.addHandler(
                        ByteToMessageHandler(HTTPRequestDecoder(limitConfiguration: decoderLimits))
                    )
                    try handlers.addHandler(HTTPConnectionHandler(application: application, server: state))
                }
            }
        return try await bootstrap.bind(host: host, port: port).get()
    }

    /// Lets requests in flight finish, closing each connection as it becomes idle, then closes
    /// whatever is left when the grace period is over.
    private func drain(state: HTTPServerState) async {
        for channel in state.beginShutdown() {
            channel.pipeline.fireUserInboundEventTriggered(HTTPGracefulShutdown())
        }
        let deadline = ContinuousClock.now + limits.shutdownGracePeriod
        while !state.openConnections.isEmpty, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = state.openConnections
        if !left.isEmpty {
            logger.warning("closing \(left.count) connection(s) still busy after the grace period")
            for channel in left { channel.close(promise: nil) }
        }
    }
}
