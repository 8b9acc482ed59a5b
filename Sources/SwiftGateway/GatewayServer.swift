import CGI
import FastCGIServer
public import Gateway
import GatewayHTTPServer
public import Logging
import NIOPosix
public import ServiceLifecycle
import Synchronization

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
/// otherwise `--socket`/`--port` (or their variables), the listening sockets systemd passes
/// (`LISTEN_FDS`, all of them served), or a listening socket on fd 0 (spawn-fcgi, Apache
/// mod_fcgid) mean FastCGI, in that order. Under `NOTIFY_SOCKET` (a `Type=notify` unit) it
/// reports `READY=1` once it listens and `STOPPING=1` when shutdown begins. FastCGI runs until the group shuts down
/// gracefully (SIGTERM through the group's `gracefulShutdownSignals`): it stops accepting,
/// lets requests in flight finish within `--shutdown-timeout`, and returns. A CGI request
/// returns once it is answered: add the server to the group with
/// `successTerminationBehavior: .gracefullyShutdownGroup` so that this ends the others
/// (the default, `.cancelGroup`, makes the group throw `serviceFinishedUnexpectedly`).
///
/// Over FastCGI and `--http` it counts its requests, connections, refusals and limit hits,
/// answers `--status-path` and `--ping-path` itself (as PHP-FPM's status page and ping), and
/// publishes the same figures as swift-metrics counters and gauges (`gateway_requests_total`,
/// …) to the `MetricsSystem` bootstrapped when ``run()`` starts.
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
            // No flags in CGI mode: only the variables CGI uses are read. A bad one still gets
            // the client a clean 500 (and the error log the value), then exit status 64.
            let settings: CGISettings
            do {
                settings = try CGISettings(environment: .process)
            } catch {
                throw CGIFailure(exitStatus: CGIServer.answerMisconfigured("\(error)"))
            }
            try Self.check(await CGIServer.run(application, maxBodyBytes: settings.maxBodyBytes, logger: logger))
            return
        }
        let settings = try GatewaySettings(options, environment: .process)
        // One set of figures for the process: its status page and its metrics.
        let statistics = ServerStatistics()
        let status = StatusConfiguration(settings)
        let metrics = StatisticsMetrics.run(statistics: statistics, configuration: status)
        defer { metrics.cancel() }
        let application = Self.counted(self.application, statistics: statistics, configuration: status)
        if let http = settings.http {
            try await Self.serveHTTP(application, address: http, settings: settings, logger: logger)
            return
        }
        let activated = Self.takeSystemdSockets(logger: logger)
        let listeners: [Listener]
        if let address = settings.address {
            if !activated.isEmpty {
                logger.warning("\(address) was asked for: ignoring the \(activated.count) socket(s) systemd passed")
            }
            listeners = [Listener(address: address, name: nil)]
        } else if !activated.isEmpty {
            listeners = activated.map { Listener(address: .inheritedDescriptor($0.descriptor), name: $0.name) }
        } else if ProcessMode.isListeningSocket(0) {
            listeners = [Listener(address: .inheritedDescriptor(0), name: nil)]
        } else {
            // Neither FastCGI nor a CGI request: the CGI runner explains how to start the app.
            try Self.check(await CGIServer.run(self.application, logger: logger))
            return
        }
        try await Self.serveFastCGI(
            application,
            statistics: statistics,
            listeners: listeners,
            settings: settings,
            roles: roles,
            logger: logger
        )
    }

    /// Counts the servers still to listen, so that READY=1 is sent once, when the last one does.
    private final class Countdown: Sendable {
        private let left: Mutex<Int>

        init(_ count: Int) { left = Mutex(count) }

        /// Counts one down; true for the call that reaches zero.
        func countDown() -> Bool {
            left.withLock {
                $0 -= 1
                return $0 == 0
            }
        }
    }

    /// One socket to serve, with the name systemd gave it (for logs and `systemctl status`).
    private struct Listener: Sendable, CustomStringConvertible {
        var address: ListenAddress
        var name: String?

        var description: String { name.map { "\(address) (\($0))" } ?? "\(address)" }
    }

    /// The listening sockets systemd passed this process (none when it passed none, or when
    /// its variables are malformed: logged, and the process serves as if they were unset).
    private static func takeSystemdSockets(logger: Logger) -> [SystemdSocketActivation.Socket] {
        do {
            let sockets = try SystemdSocketActivation.takeFromEnvironment()?.sockets ?? []
            if !sockets.isEmpty {
                let list = sockets.map { "fd \($0.descriptor) (\($0.name))" }.joined(separator: ", ")
                logger.info("systemd passed \(sockets.count) listening socket(s): \(list)")
            }
            for socket in sockets where !ProcessMode.isListeningSocket(socket.descriptor) {
                logger.warning(
                    "systemd passed fd \(socket.descriptor) (\(socket.name)), which is not a listening socket"
                )
            }
            return sockets.filter { ProcessMode.isListeningSocket($0.descriptor) }
        } catch {
            logger.error("ignoring systemd's socket variables: \(error)")
            return []
        }
    }

    /// `application` inside the status and ping paths and the request counting, its concrete
    /// type kept (opened here) so that the server is specialized for it.
    private static func counted<App: GatewayApplication>(
        _ application: App,
        statistics: ServerStatistics,
        configuration: StatusConfiguration
    ) -> any GatewayApplication {
        StatusApplication(application, statistics: statistics, configuration: configuration)
    }

    private static func check(_ status: Int32) throws {
        if status != 0 { throw CGIFailure(exitStatus: status) }
    }

    /// `--http`: the development server, with the FastCGI limits that mean the same there.
    private static func serveHTTP<App: GatewayApplication>(
        _ application: App,
        address: HTTPServerAddress,
        settings: GatewaySettings,
        logger: Logger
    ) async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = settings.limits.maxBodyBytes
        limits.bodyBufferBytes = settings.limits.bodyBufferBytes
        limits.maxConnections = settings.limits.maxConnections
        limits.shutdownGracePeriod = .seconds(settings.shutdownTimeoutSeconds)
        let server = GatewayHTTPServer(application: application, address: address, logger: logger, limits: limits)
        try await server.run()
    }

    private static func serveFastCGI<App: GatewayApplication>(
        _ application: App,
        statistics: ServerStatistics,
        listeners: [Listener],
        settings: GatewaySettings,
        roles: Set<FastCGIRole>,
        logger: Logger
    ) async throws {
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: settings.threads ?? UsableCPUs.count)
        let notifier = SystemdNotifier()
        let waitingToListen = Countdown(listeners.count)
        let serving = listeners.map(\.description).joined(separator: ", ")
        let servers = listeners.map { listener in
            var configuration = FastCGIServer<App>.Configuration(
                address: listener.address,
                limits: settings.limits,
                allowedPeers: WebServerAllowList(getenv("FCGI_WEB_SERVER_ADDRS").map { String(cString: $0) }),
                shutdownGracePeriod: .seconds(settings.shutdownTimeoutSeconds),
                roles: Set(roles.map(\.wireRole)),
                logger: logger
            )
            configuration.statistics = statistics
            return FastCGIServer(application: application, configuration: configuration, eventLoopGroup: eventLoops)
        }
        do {
            try await withGracefulShutdownHandler {
                // One server per socket on the same event loops: each stops accepting and
                // drains on the group's graceful shutdown; one failing to listen stops all.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for server in servers {
                        group.addTask {
                            try await server.run { _ in
                                if waitingToListen.countDown() {
                                    notifier.notify(["READY=1", "STATUS=Serving FastCGI on \(serving)"])
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            } onGracefulShutdown: {
                notifier.notify([
                    "STOPPING=1",
                    "STATUS=Stopping: no new connections, requests in flight get up to \(settings.shutdownTimeoutSeconds) s",
                ])
            }
        } catch {
            try? await eventLoops.shutdownGracefully()
            throw error
        }
        try? await eventLoops.shutdownGracefully()
    }
}
