import FastCGI
import Gateway
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a Gateway `GatewayApplication` for the FastCGI connections of a web server.
///
/// A swift-service-lifecycle `Service`: in a `ServiceGroup` configured with
/// `gracefulShutdownSignals: [.sigterm, .sigint]` (as `serve` sets it up), those signals stop
/// it gracefully: no new connections, in-flight requests finish within
/// ``Configuration/shutdownGracePeriod``, then it returns.
public struct FastCGIServer<App: GatewayApplication>: Service {
    /// How and where the server runs.
    public struct Configuration: Sendable {
        /// Where to listen.
        public var address: ListenAddress
        /// Bounds on everything a peer can make the server hold.
        public var limits: ServerLimits
        /// TCP peers allowed to connect (`FCGI_WEB_SERVER_ADDRS`); nil allows all.
        public var allowedPeers: WebServerAllowList?
        /// How long in-flight requests may take to finish once shutdown starts.
        public var shutdownGracePeriod: Duration
        /// The roles the application plays (§6): Responder and Authorizer; others (Filter,
        /// whose DATA stream is not implemented) are refused with `FCGI_UNKNOWN_ROLE`.
        /// Responder only by default: an application written as a responder, mistakenly
        /// configured as an Authorizer, would otherwise answer 200 and allow every request.
        public var roles: Set<Role>
        /// Where the server logs.
        public var logger: Logger
        /// Where the server counts connections, refusals and limit hits: the process's status
        /// page and metrics (SwiftGateway); nil counts into statistics nobody reads.
        package var statistics: ServerStatistics?

        /// A configuration listening at `address` with default limits.
        public init(
            address: ListenAddress,
            limits: ServerLimits = ServerLimits(),
            allowedPeers: WebServerAllowList? = nil,
            shutdownGracePeriod: Duration = .seconds(30),
            roles: Set<Role> = [.responder],
            logger: Logger = Logger(label: "swift-gateway.fastcgi")
        ) {
            self.roles = roles
            self.address = address
            self.limits = limits
            self.allowedPeers = allowedPeers
            self.shutdownGracePeriod = shutdownGracePeriod
            self.logger = logger
        }
    }

    /// The application every request runs.
    public let application: App
    /// The configuration it runs with.
    public let configuration: Configuration
    private let eventLoopGroup: any EventLoopGroup

    /// A server for `application`; it listens once ``run()`` is called.
    public init(
        application: App,
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.application = application
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
    }

    /// Listens and serves until graceful shutdown is triggered (or the task is cancelled).
    public func run() async throws {
        try await run(onListening: { _ in })
    }

    /// Like ``run()``, calling `onListening` with the bound address once connections are accepted
    /// (tests use it to learn a kernel-chosen port).
    public func run(onListening: @Sendable (SocketAddress?) -> Void) async throws {
        let logger = configuration.logger
        let state = ServerState(
            limits: configuration.limits,
            logger: logger,
            allowedPeers: configuration.allowedPeers,
            multiprocess: configuration.address.isInherited,
            roles: configuration.roles,
            statistics: configuration.statistics ?? ServerStatistics()
        )
        let unsupported = configuration.roles.subtracting(state.roles)
        if !unsupported.isEmpty {
            let names = unsupported.map(\.description).sorted().joined(separator: ", ")
            logger.warning("roles not supported, their requests will be refused: \(names)")
        }
        let (serverChannel, listeningDescriptor) = try await bind(state: state)
        // The socket file this server created, so that it removes that one and no other.
        var socketFile: UnixSocketFile.Identity?
        if case .unix(let path, _) = configuration.address { socketFile = UnixSocketFile.identity(of: path) }
        logger.info("FastCGI server listening on \(configuration.address)")
        onListening(serverChannel.localAddress)
        let deadlineSweep = Self.sweepDeadlines(of: state, limits: configuration.limits)
        defer { deadlineSweep?.cancel() }

        // Serves until graceful shutdown, cancellation, or the listening socket failing.
        let (stopped, stop) = AsyncStream<Never>.makeStream()
        serverChannel.closeFuture.whenComplete { _ in stop.finish() }
        await withTaskCancellationOrGracefulShutdownHandler {
            for await _ in stopped {}
        } onCancelOrGracefulShutdown: {
            stop.finish()
        }
        // Every step of the stop counts against the grace period, from now.
        let deadline = ContinuousClock.now + configuration.shutdownGracePeriod
        // Remove the socket file first: no web server can connect any more, and a new instance
        // may bind the same path while this one finishes its requests (its file must survive
        // this one's exit).
        if case .unix(let path, _) = configuration.address, let socketFile {
            UnixSocketFile.remove(path, ifStill: socketFile)
        }
        let linger = Self.shutdownLinger
        for channel in state.beginShutdown(linger: linger) {
            channel.pipeline.fireUserInboundEventTriggered(GracefulShutdownRequested(linger: linger))
        }
        if !Task.isCancelled {
            if let listeningDescriptor {
                // A web server that connected before the file went away has sent its request
                // already: accept what waits in the backlog instead of resetting it.
                await Self.waitForEmptyBacklog(of: listeningDescriptor, until: min(deadline, .now + .seconds(1)))
            }
            // Stop accepting (what still waits stays in the kernel's backlog for whoever shares
            // an inherited socket), and let the connections accepted so far become active:
            // SwiftNIO closes, unanswered, one whose set-up completes after the listening
            // channel closed.
            try? await serverChannel.setOption(.autoRead, value: false).get()
            let setUpBy = min(deadline, .now + .seconds(1))
            while state.connectionsSettingUp > 0, ContinuousClock.now < setUpBy, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        try? await serverChannel.close()
        await drain(state: state, linger: linger, until: deadline)
        logger.info("FastCGI server stopped")
    }

    /// How long a connection idle at shutdown stays open for a request already on its way
    /// (see `ConnectionStateMachine.shutdownRequested`). Under load nginx reuses every kept
    /// connection within milliseconds; one left idle this long is deep in its cache.
    static var shutdownLinger: Duration { .milliseconds(250) }

    /// Waits until the listening socket has no connection waiting to be accepted (SwiftNIO
    /// accepts them meanwhile), or `deadline` passes.
    private static func waitForEmptyBacklog(of descriptor: CInt, until deadline: ContinuousClock.Instant) async {
        var emptyChecks = 0
        while emptyChecks < 2, ContinuousClock.now < deadline, !Task.isCancelled {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let pending = poll(&entry, 1, 0) > 0 && entry.revents & Int16(POLLIN) != 0
            emptyChecks = pending ? 0 : emptyChecks + 1
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Connections the kernel queues before they are accepted: spawn-fcgi's default.
    private static var listenBacklog: Int32 { 1024 }

    /// Reads start at 16 KiB (a whole nginx request) and grow to 256 KiB for bodies.
    private static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
    }

    /// The listening channel, and its descriptor when the backlog is this server's alone to
    /// drain at shutdown: a socket file it made (an inherited socket is kept by whoever passed
    /// it, whose next process accepts the backlog; TCP keeps accepting until it is closed).
    private func bind(state: ServerState) async throws -> (any Channel, CInt?) {
        let application = self.application
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: Self.listenBacklog)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptedConnections(server: state))
                }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Set here, synchronously: as `childChannelOption`s each would cost every
                    // accepted connection a chain of futures (5 % of a short connection's CPU).
                    guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
                    try options.setOption(.allowRemoteHalfClosure, value: true)
                    try options.setOption(.recvAllocator, value: Self.receiveAllocator)
                    // Past `outputBufferBytes` queued, the channel turns unwritable: response
                    // writers wait, and the connection stops reading and decoding.
                    let high = max(1, state.limits.outputBufferBytes)
                    try options.setOption(.writeBufferWaterMark, value: .init(low: high / 2, high: high))
                    let handlers = channel.pipeline.syncOperations
                    try handlers.addHandler(ConnectionHandler(application: application, server: state))
                }
            }
        switch configuration.address {
        case .unix(let path, let permissions):
            let socket = try UnixSocketFile.makeListeningSocket(
                at: path,
                permissions: permissions,
                backlog: Self.listenBacklog
            )
            do {
                return (try await adopt(socket, with: bootstrap), socket)
            } catch {
                unlink(path)
                throw error
            }
        case .tcp(let host, let port):
            return (try await bootstrap.bind(host: host, port: port).get(), nil)
        case .inheritedDescriptor(let descriptor):
            return (try await adopt(descriptor, with: bootstrap), nil)
        }
    }

    /// Serves a socket that already listens: one this server made, or one it inherited.
    private func adopt(_ descriptor: CInt, with bootstrap: ServerBootstrap) async throws -> any Channel {
        let channel = try await bootstrap.withBoundSocket(descriptor).get()
        // SwiftNIO listens on an adopted socket again, with its default backlog of 128, which
        // would refuse a burst of connections that spawn-fcgi's 1024 (and ours) queues.
        if listen(descriptor, Self.listenBacklog) != 0 {
            configuration.logger.warning(
                "cannot raise the listen backlog to \(Self.listenBacklog): \(String(cString: strerror(errno)))"
            )
        }
        return channel
    }

    /// Lets in-flight requests finish, each connection closing as it becomes idle (idle ones
    /// after `linger`), then closes whatever is left when the grace period is over.
    private func drain(state: ServerState, linger: Duration, until deadline: ContinuousClock.Instant) async {
        let started = ContinuousClock.now
        var lastCheck = started
        // A cancelled run stops at once (and its sleeps would not wait).
        while state.connectionCount > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
            // The sweep ticks too seldom to end a linger on time: tick every connection once the
            // linger is over, then every 100 ms (a connection that lingered is closed by then).
            let now = ContinuousClock.now
            if now - started >= linger, now - lastCheck >= .milliseconds(100) || lastCheck == started {
                lastCheck = now
                let check = DeadlineCheck(now: .now)
                for channel in state.openConnections { channel.pipeline.fireUserInboundEventTriggered(check) }
            }
        }
        let left = state.openConnections
        if !left.isEmpty {
            configuration.logger.warning("closing \(left.count) connection(s) still busy after the grace period")
            for channel in left { channel.close(promise: nil) }
        }
    }
}

extension FastCGIServer {
    /// Tells every connection the time, so each checks its deadlines (idle, params, stall,
    /// close). One task for the whole server, instead of timers per connection that every
    /// short-lived connection would pay for; it ticks at a quarter of the shortest deadline
    /// (250 ms to 30 s), which is how late a deadline may be enforced.
    fileprivate static func sweepDeadlines(of state: ServerState, limits: ServerLimits) -> Task<Void, Never>? {
        let timeouts = [
            limits.idleTimeoutSeconds, limits.paramsTimeoutSeconds, limits.stallTimeoutSeconds,
            limits.closeTimeoutSeconds,
        ].filter { $0 > 0 }
        guard let shortest = timeouts.min() else { return nil }
        // Saturating: a timeout may be as large as Int64.max seconds.
        let quarter = shortest > 120 ? Int64(30_000) : shortest * 250
        let interval = Duration.milliseconds(max(250, min(quarter, 30_000)))
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                let check = DeadlineCheck(now: .now)
                for channel in state.openConnections {
                    channel.pipeline.fireUserInboundEventTriggered(check)
                }
            }
        }
    }
}

/// Sent to every connection by the deadline sweep: check deadlines against `now`.
struct DeadlineCheck: Sendable {
    let now: MonotonicInstant
}

/// Sent down each connection's pipeline when the server starts shutting down.
struct GracefulShutdownRequested: Sendable {
    /// How long an idle connection stays open for a request already on its way.
    let linger: Duration
}
