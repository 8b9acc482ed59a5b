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

/// Runs a Gateway ``Application`` for the FastCGI connections of a web server.
///
/// A swift-service-lifecycle `Service`: put it in a `ServiceGroup` and SIGTERM/SIGINT stop it
/// gracefully (no new connections, in-flight requests finish within
/// ``Configuration/shutdownGracePeriod``, then it returns).
public struct FastCGIServer<App: Application>: Service {
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
        /// The roles the application plays (§6); others are refused with `FCGI_UNKNOWN_ROLE`.
        /// Responder only by default: an application written as a responder, mistakenly
        /// configured as an Authorizer, would otherwise answer 200 and allow every request.
        public var roles: Set<Role>
        /// Where the server logs.
        public var logger: Logger

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
            roles: configuration.roles
        )
        let serverChannel = try await bind(state: state)
        // The socket file this server created, so that it removes that one and no other.
        var socketFile: UnixSocketFile.Identity?
        if case .unix(let path, _) = configuration.address { socketFile = UnixSocketFile.identity(of: path) }
        logger.info("FastCGI server listening on \(configuration.address)")
        onListening(serverChannel.localAddress)
        let idleSweep = Self.sweepIdleConnections(of: state, timeoutSeconds: configuration.limits.idleTimeoutSeconds)
        defer { idleSweep?.cancel() }

        await withTaskCancellationOrGracefulShutdownHandler {
            try? await serverChannel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            serverChannel.close(promise: nil)
        }
        try? await serverChannel.close()
        // Remove the socket file as soon as nothing listens on it, before draining: a new
        // instance may bind the same path while this one finishes its requests, and its file
        // must survive this one's exit.
        if case .unix(let path, _) = configuration.address, let socketFile {
            UnixSocketFile.remove(path, ifStill: socketFile)
        }
        await drain(state: state)
        logger.info("FastCGI server stopped")
    }

    /// Reads start at 16 KiB (a whole nginx request) and grow to 256 KiB for bodies.
    private static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
    }

    private func bind(state: ServerState) async throws -> any Channel {
        let application = self.application
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Set here, synchronously: as `childChannelOption`s each would cost every
                    // accepted connection a chain of futures (5 % of a short connection's CPU).
                    guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
                    try options.setOption(.allowRemoteHalfClosure, value: true)
                    try options.setOption(.recvAllocator, value: Self.receiveAllocator)
                    let handlers = channel.pipeline.syncOperations
                    try handlers.addHandler(ConnectionHandler(application: application, server: state))
                }
            }
        switch configuration.address {
        case .unix(let path, let permissions):
            try UnixSocketFile.prepare(path)
            let channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
            do {
                try UnixSocketFile.apply(permissions, to: path)
            } catch {
                try? await channel.close()
                throw error
            }
            return channel
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .inheritedDescriptor(let descriptor):
            return try await bootstrap.withBoundSocket(descriptor).get()
        }
    }

    /// Lets in-flight requests finish, closing each connection as it becomes idle, then
    /// closes whatever is left when the grace period is over.
    private func drain(state: ServerState) async {
        let channels = state.beginShutdown()
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(GracefulShutdownRequested())
        }
        let deadline = ContinuousClock.now + configuration.shutdownGracePeriod
        // A cancelled run stops at once (and its sleeps would not wait).
        while state.connectionCount > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = state.beginShutdown()
        if !left.isEmpty {
            configuration.logger.warning("closing \(left.count) connection(s) still busy after the grace period")
            for channel in left { channel.close(promise: nil) }
        }
    }
}

extension FastCGIServer {
    /// Closes connections that stayed idle past the timeout. One task for the whole server,
    /// instead of a timer per connection that every short-lived connection would pay for.
    fileprivate static func sweepIdleConnections(of state: ServerState, timeoutSeconds: Int64) -> Task<Void, Never>? {
        guard timeoutSeconds > 0 else { return nil }
        let interval = Duration.milliseconds(max(250, min(timeoutSeconds * 1000 / 4, 30_000)))
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                let check = IdleCheck(idleSince: .now() - .seconds(timeoutSeconds))
                for channel in state.openConnections {
                    channel.pipeline.fireUserInboundEventTriggered(check)
                }
            }
        }
    }
}

/// Sent to every connection by the idle sweep: close if nothing arrived since `idleSince`.
struct IdleCheck: Sendable {
    let idleSince: NIODeadline
}

/// Sent down each connection's pipeline when the server starts shutting down.
struct GracefulShutdownRequested: Sendable {}

/// The Unix socket file: stale ones are replaced, live ones are not, permissions are applied.
enum UnixSocketFile {
    /// Errors binding a Unix socket path.
    struct AddressInUse: Error, CustomStringConvertible {
        let path: String
        var description: String { "another server is already listening on \(path)" }
    }

    struct PermissionError: Error, CustomStringConvertible {
        let description: String
    }

    /// Which file a path named: device and inode.
    struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64
    }

    static func identity(of path: String) -> Identity? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// Unlinks `path` if it is still the file `identity` names (not one a successor bound since).
    static func remove(_ path: String, ifStill identity: Identity) {
        guard Self.identity(of: path) == identity else { return }
        unlink(path)
    }

    /// Removes a socket file left by a dead server; refuses when a server still answers on it.
    static func prepare(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else { return }  // not a socket: let bind report it
        if isLive(path) { throw AddressInUse(path: path) }
        unlink(path)
    }

    private static func isLive(_ path: String) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    static func apply(_ permissions: SocketPermissions, to path: String) throws {
        guard chmod(path, mode_t(permissions.mode)) == 0 else {
            throw PermissionError(description: "cannot set mode of \(path): errno \(errno)")
        }
        guard permissions.owner != nil || permissions.group != nil else { return }
        let uid = try permissions.owner.map(userID) ?? uid_t.max
        let gid = try permissions.group.map(groupID) ?? gid_t.max
        guard chown(path, uid, gid) == 0 else {
            throw PermissionError(description: "cannot change owner of \(path): errno \(errno)")
        }
    }

    private static func userID(_ name: String) throws -> uid_t {
        if let id = uid_t(name) { return id }
        guard let entry = getpwnam(name) else { throw PermissionError(description: "no such user: \(name)") }
        return entry.pointee.pw_uid
    }

    private static func groupID(_ name: String) throws -> gid_t {
        if let id = gid_t(name) { return id }
        guard let entry = getgrnam(name) else { throw PermissionError(description: "no such group: \(name)") }
        return entry.pointee.gr_gid
    }
}
