import ArgumentParser
import CGI
@_exported import Gateway
@_exported import HTTPTypes
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `application` the way this process was started, then exits: the one-line program.
///
/// Decides like libfcgi's `FCGX_IsCGI`: a web server's CGI request (`REQUEST_METHOD` set,
/// fd 0 not a listening socket) is answered once, reading no flags (Apache passes parts of a
/// query string as arguments); otherwise the flags of ``GatewayOptions`` are parsed, and
/// `--socket`/`--port`, or a listening socket on fd 0 (spawn-fcgi, Apache mod_fcgid,
/// `cgi-fcgi -start`), mean FastCGI until SIGTERM or SIGINT. One binary deploys both ways.
///
/// Unlike ``GatewayServer``, which it runs in a `ServiceGroup` of its own, `serve`
/// **bootstraps logging** (swift-log's `LoggingSystem`, which can be bootstrapped once per
/// process) for FastCGI: to standard error, at `--log-level`/`GATEWAY_LOG_LEVEL`. For a CGI
/// request it leaves `LoggingSystem` alone (bootstrapping it would cost start-up time):
/// `environ.logger` writes to standard error at `GATEWAY_LOG_LEVEL`, and other loggers of
/// the app keep swift-log's default, standard output, which is the response; log through
/// `environ.logger`. An app that sets up its own logging, parses its own flags or runs
/// other services uses ``GatewayServer``.
///
/// Exit status: 0 after a graceful shutdown or a CGI response; 64 (EX_USAGE) for an invalid
/// flag or `GATEWAY_*` variable, with a message naming it; 1 when the server fails (the socket
/// cannot be bound) or a CGI response was cut short; 2 when started by hand from a terminal.
///
/// Over FastCGI the application plays the `roles` given: Responder by default; pass
/// `[.authorizer]` for an Apache `mod_authnz_fcgi` Authorizer (200 allows the request, its
/// `Variable-NAME:` headers become variables of the request Apache then serves; any other
/// status refuses it). Other roles are refused with `FCGI_UNKNOWN_ROLE`.
///
/// The CGI path stays on the caller's executor (no task, no service group), which keeps a
/// CGI request's start-up near a C program's.
nonisolated(nonsending) public func serve(
    _ application: some GatewayApplication,
    roles: Set<FastCGIRole> = [.responder]
) async -> Never {
    signal(SIGPIPE, SIG_IGN)
    if ProcessMode.isCGIRequest {
        let settings: CGISettings
        do {
            settings = try CGISettings(environment: .process)
        } catch {
            // The web server's client gets a clean 500; the log gets the value named.
            exit(CGIServer.answerMisconfigured("\(error)"))
        }
        // Not bootstrapped, and not swift-log's StreamLogHandler: each costs a CGI request
        // about 0.08 ms of CPU at start (see StandardErrorLogHandler).
        let level = settings.logLevel
        let logger = Logger(label: "swift-gateway") { StandardErrorLogHandler(label: $0, logLevel: level) }
        exit(await CGIServer.run(application, maxBodyBytes: settings.maxBodyBytes, logger: logger))
    }
    let command: ServeCommand
    do {
        command = try ServeCommand.parse(Array(CommandLine.arguments.dropFirst()))
    } catch {
        ServeCommand.exit(withError: error)
    }
    bootstrapStandardErrorLogging(level: command.gateway.logLevel)
    let logger = Logger(label: "swift-gateway")
    let server = GatewayServer(application, options: command.gateway, roles: roles, logger: logger)
    let group = ServiceGroup(
        configuration: .init(
            services: [
                .init(
                    service: server,
                    successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup
                )
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    do {
        try await group.run()
        exit(0)
    } catch let failure as GatewayServer.CGIFailure {
        exit(failure.exitStatus)
    } catch {
        logger.critical("\(error)")
        exit(1)
    }
}

/// Runs the application made from `handler`; see ``serve(_:roles:)``.
nonisolated(nonsending) public func serve(
    roles: Set<FastCGIRole> = [.responder],
    _ handler: @escaping ClosureApplication.Handler
) async -> Never {
    await serve(ClosureApplication(handler), roles: roles)
}

private func bootstrapStandardErrorLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// The command line of ``serve(_:roles:)``: ``GatewayOptions`` with the help's introduction.
struct ServeCommand: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "app") },
            abstract: "Serve this web application over FastCGI (or answer one CGI request).",
            discussion: """
                How the mode is chosen:
                  • REQUEST_METHOD set by a web server: answer one CGI request
                    (no flags are read then).
                  • --socket PATH or --port N: listen for FastCGI connections
                    (nginx fastcgi_pass, Apache mod_proxy_fcgi).
                  • a listening socket on standard input (spawn-fcgi, Apache
                    mod_fcgid, cgi-fcgi -start): serve FastCGI on it.
                  • --http HOST:PORT, for development only: serve HTTP/1.1 without
                    nginx (production goes behind nginx or Apache over FastCGI).

                Every option also reads the environment variable in its help;
                a flag overrides it. A malformed or out-of-range value of
                either is an error (exit status 64).

                Examples:
                  app --socket /run/app/fcgi.sock  # fastcgi_pass unix:/run/app/fcgi.sock;
                  app --port 9000                  # 127.0.0.1:9000; --host :: for IPv6
                  spawn-fcgi -s /run/app/fcgi.sock -M 0660 -- ./app

                TCP peers are limited to FCGI_WEB_SERVER_ADDRS (comma-separated)
                when it is set. SIGTERM or SIGINT stops accepting, lets requests
                in flight finish, and exits 0.
                """
        )
    }

    @OptionGroup var gateway: GatewayOptions
}
