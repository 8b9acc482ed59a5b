import CGI
import FastCGIServer
public import Gateway
public import Logging
import NIOPosix
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves an application the way this process was started, as one service of the app's own
/// `ServiceGroup` (swift-service-lifecycle), beside its other services (a database pool, a
/// background job), with its own command line and its own logging.
///
/// It decides like libfcgi's `FCGX_IsCGI` and ``serve(_:roles:)``: a web server's CGI request
/// (`REQUEST_METHOD` set, fd 0 not a listening socket) is answered once, whatever the flags;
/// otherwise `--socket`/`--port` (or their variables) or a listening socket on fd 0
/// (spawn-fcgi, Apache mod_fcgid) mean FastCGI. FastCGI runs until the group shuts down
/// gracefully (SIGTERM through the group's `gracefulShutdownSignals`): it stops accepting,
/// lets requests in flight finish within `--shutdown-timeout`, and returns. A CGI request
/// returns once it is answered: add the server to the group with
/// `successTerminationBehavior: .gracefullyShutdownGroup` so that this ends the others
/// (the default, `.cancelGroup`, makes the group throw `serviceFinishedUnexpectedly`).
///
/// It never bootstraps logging and never exits: it logs through the `logger` it is given
/// (each request's `environ.logger` adds the request id, method and path to it), and
/// reports failures by throwing. In CGI mode standard output is the response, so that
/// logger must not write to standard output. ``serve(_:roles:)`` is the one-line path that
/// does bootstrap logging and exits. It does set `SIGPIPE` to be ignored for the process, so
/// that a peer gone mid-write is an error, not the end of the app.
public struct GatewayServer: Service {
    /// Why ``run()`` failed in CGI mode; `exitStatus` is what a CGI program exits with.
    public struct CGIFailure: Error, Sendable, CustomStringConvertible {
        /// 1: the response was cut short (the application threw after its head, or standard
        /// output failed); 2: nothing was served, the program was started by hand.
        public let exitStatus: Int32

        /// Why the server ended and with which status, for the log line before the exit.
        public var description: String {
            exitStatus == 2
                ? "not started by a web server: pass --socket or --port, or let a web server run it as CGI"
                : "the CGI response was cut short (exit status \(exitStatus))"
        }
    }

    private let application: any GatewayApplication
    private let options: GatewayOptions
    private let roles: Set<FastCGIRole>
    private let logger: Logger

    /// A server for `application` with parsed `options`, playing `roles` over FastCGI
    /// (Responder unless asked), logging through `logger`.
    public init(
        _ application: some GatewayApplication,
        options: GatewayOptions,
        roles: Set<FastCGIRole> = [.responder],
        logger: Logger
    ) {
        self.application = application
        self.options = options
        self.roles = roles
        self.logger = logger
    }

    /// Serves one CGI request, or FastCGI until graceful shutdown. Throws when the options or
    /// their variables are invalid (a `ValidationError` naming the value), when the socket
    /// cannot be bound, and ``CGIFailure`` when a CGI response failed.
    public func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        if ProcessMode.isCGIRequest {
            // No flags in CGI mode: only the variables CGI uses are read.
            let settings = try CGISettings(environment: .process)
            try Self.check(await CGIServer.run(application, maxBodyBytes: settings.maxBodyBytes, logger: logger))
            return
        }
        let settings = try GatewaySettings(options, environment: .process)
        guard let address = settings.address ?? (ProcessMode.isListeningSocket(0) ? .inheritedDescriptor(0) : nil)
        else {
            // Neither FastCGI nor a CGI request: the CGI runner explains how to start the app.
            try Self.check(await CGIServer.run(application, logger: logger))
            return
        }
        try await Self.serveFastCGI(application, address: address, settings: settings, roles: roles, logger: logger)
    }

    private static func check(_ status: Int32) throws {
        if status != 0 { throw CGIFailure(exitStatus: status) }
    }

    private static func serveFastCGI<App: GatewayApplication>(
        _ application: App,
        address: ListenAddress,
        settings: GatewaySettings,
        roles: Set<FastCGIRole>,
        logger: Logger
    ) async throws {
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: settings.threads ?? UsableCPUs.count)
        let server = FastCGIServer(
            application: application,
            configuration: .init(
                address: address,
                limits: settings.limits,
                allowedPeers: WebServerAllowList(getenv("FCGI_WEB_SERVER_ADDRS").map { String(cString: $0) }),
                shutdownGracePeriod: .seconds(settings.shutdownTimeoutSeconds),
                roles: Set(roles.map(\.wireRole)),
                logger: logger
            ),
            eventLoopGroup: eventLoops
        )
        do {
            try await server.run()
        } catch {
            try? await eventLoops.shutdownGracefully()
            throw error
        }
        try? await eventLoops.shutdownGracefully()
    }
}
