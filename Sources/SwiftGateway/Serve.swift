import ArgumentParser
import CGI
import FastCGIServer
@_exported import Gateway
@_exported import HTTPTypes
import Logging
import NIOPosix
import ServiceLifecycle

@_exported import struct FastCGI.Role

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `application` the way this process was started, then exits.
///
/// Decides like libfcgi's `FCGX_IsCGI`: `--socket`/`--port` flags, or a listening socket on
/// fd 0 (spawn-fcgi, Apache mod_fcgid, `cgi-fcgi -start`), mean FastCGI; a `REQUEST_METHOD`
/// in the environment means one CGI request. One binary therefore deploys both ways.
///
/// Over FastCGI the application plays the `roles` given: Responder by default; pass
/// `[.authorizer]` for an Apache `mod_authnz_fcgi` Authorizer (200 allows the request, its
/// `Variable-NAME:` headers become variables of the request Apache then serves; any other
/// status refuses it). Other roles are refused with `FCGI_UNKNOWN_ROLE`.
nonisolated(nonsending) public func serve(
    _ application: some GatewayApplication,
    roles: Set<Role> = [.responder]
) async -> Never {
    signal(SIGPIPE, SIG_IGN)
    let listeningOnStandardInput = ServeMode.isListeningSocket(0)
    // A CGI request never reads flags: Apache passes parts of a query string as arguments.
    if !listeningOnStandardInput, getenv("REQUEST_METHOD") != nil {
        let maxBodyBytes: Int
        do {
            maxBodyBytes = try CGIServer.maxBodyBytes(fromEnvironmentValue: environment("GATEWAY_MAX_BODY_BYTES"))
        } catch {
            exit(CGIServer.answerMisconfigured(error))
        }
        exit(await CGIServer.run(application, maxBodyBytes: maxBodyBytes))
    }
    let options: ServeOptions
    do {
        options = try ServeOptions.parse(Array(CommandLine.arguments.dropFirst()))
    } catch {
        ServeOptions.exit(withError: error)
    }
    let address: ListenAddress
    if let requested = options.requestedAddress {
        address = requested
    } else if listeningOnStandardInput {
        address = .inheritedDescriptor(0)
    } else {
        // Neither FastCGI nor a CGI request: let the CGI runner explain how to start the app.
        exit(await CGIServer.run(application))
    }
    exit(await runFastCGI(application, address: address, options: options, roles: roles))
}

/// Runs the application made from `handler`; see ``serve(_:roles:)``.
nonisolated(nonsending) public func serve(
    roles: Set<Role> = [.responder],
    _ handler: @escaping ClosureApplication.Handler
) async -> Never {
    await serve(ClosureApplication(handler), roles: roles)
}

private func runFastCGI(
    _ application: some GatewayApplication,
    address: ListenAddress,
    options: ServeOptions,
    roles: Set<Role>
) async -> Int32 {
    let level = Logger.Level(rawValue: options.logLevel) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    let logger = Logger(label: "swift-gateway")
    let server = FastCGIServer(
        application: application,
        configuration: .init(
            address: address,
            limits: options.limits,
            allowedPeers: WebServerAllowList(environment("FCGI_WEB_SERVER_ADDRS")),
            shutdownGracePeriod: .seconds(options.shutdownTimeout),
            roles: roles,
            logger: logger
        ),
        // Never shut down: the process exits when the server returns.
        eventLoopGroup: MultiThreadedEventLoopGroup(numberOfThreads: options.eventLoopThreads ?? UsableCPUs.count)
    )
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    do {
        try await group.run()
        return 0
    } catch {
        logger.critical("\(error)")
        return 1
    }
}

/// How the process was started.
enum ServeMode {
    /// True when `descriptor` is a socket that is not connected: a listening socket handed
    /// over by a process manager (libfcgi's test: `getpeername` fails with `ENOTCONN`).
    static func isListeningSocket(_ descriptor: Int32) -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) }
        }
        return result != 0 && errno == ENOTCONN
    }
}
