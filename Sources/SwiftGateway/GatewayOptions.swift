public import ArgumentParser
public import Logging

// Flags and environment variables with argument-parser alone, not apple/swift-configuration:
// the help must stay argument-parser's (`--help` lists each flag with its variable), and
// swift-configuration would add a second description of the same names, its own error
// messages beside argument-parser's exit status 64, and a package graph linked into every
// CGI binary, whose start-up is measured. A flag, else its variable, else the default, with
// strict parsing and a bounded range each, is the small table in GatewaySettings.swift.

/// The command-line options of a swift-gateway server, each also read from a `GATEWAY_*`
/// environment variable (named in its help), so a systemd unit or a spawn-fcgi line can
/// configure an app without flags.
///
/// Use it in your own command, next to your own flags, and hand it to ``GatewayServer``:
///
/// ```swift
/// @main struct App: AsyncParsableCommand {
///     @Option var greeting = "Hello"
///     @OptionGroup var gateway: GatewayOptions
/// }
/// ```
///
/// A flag overrides its variable. Parsing validates both: a malformed or out-of-range value
/// of either is an error that names it (argument-parser exits with status 64, EX_USAGE),
/// never a silent default. `--socket` and `--port` name the address; given together (as
/// flags, or as `GATEWAY_SOCKET` and `GATEWAY_PORT`) they are an error, and a flag's address
/// overrides the environment's. An empty variable counts as unset.
///
/// A CGI request reads no flags: Apache passes the parts of a query string without `=` as
/// arguments. Parse ``commandLineArguments`` instead of `CommandLine.arguments` (see there).
public struct GatewayOptions: ParsableArguments, Sendable {
    @Option(help: "Listen for FastCGI on this Unix socket path. [env: GATEWAY_SOCKET]")
    var socket: String?

    @Option(help: "Mode of the Unix socket file, in octal (default 0660). [env: GATEWAY_SOCKET_MODE]")
    var socketMode: String?

    @Option(help: "Owner (user name or id) of the Unix socket file. [env: GATEWAY_SOCKET_OWNER]")
    var socketOwner: String?

    @Option(help: "Group (name or id) of the Unix socket file. [env: GATEWAY_SOCKET_GROUP]")
    var socketGroup: String?

    @Option(help: Setting.port.help)
    var port: String?

    @Option(
        help: """
            For development only: serve over HTTP/1.1 on HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, \
            :8080) without nginx, the environ filled as nginx's fastcgi_params would. Production goes \
            behind nginx or Apache over FastCGI. [env: GATEWAY_HTTP]
            """
    )
    var http: String?

    @Option(help: "Address to listen on with --port (default 127.0.0.1; :: for IPv6). [env: GATEWAY_HOST]")
    var host: String?

    @Option(help: Setting.maxConnections.help)
    var maxConnections: String?

    @Option(help: Setting.maxRequests.help)
    var maxRequests: String?

    @Option(help: Setting.maxRequestsPerConnection.help)
    var maxRequestsPerConnection: String?

    @Option(help: Setting.maxParamsBytes.help)
    var maxParamsBytes: String?

    @Option(help: Setting.maxParamsBytesPerConnection.help)
    var maxParamsBytesPerConnection: String?

    @Option(help: Setting.maxParams.help)
    var maxParams: String?

    @Option(help: Setting.maxBodyBytes.help)
    var maxBodyBytes: String?

    @Option(help: Setting.outputBufferBytes.help)
    var outputBufferBytes: String?

    @Option(help: Setting.idleTimeout.help)
    var idleTimeout: String?

    @Option(help: Setting.paramsTimeout.help)
    var paramsTimeout: String?

    @Option(help: Setting.stallTimeout.help)
    var stallTimeout: String?

    @Option(help: Setting.closeTimeout.help)
    var closeTimeout: String?

    @Option(help: Setting.shutdownTimeout.help)
    var shutdownTimeout: String?

    @Option(help: Setting.threads.help)
    var threads: String?

    @Option(help: Setting.statusPath.help)
    var statusPath: String?

    @Option(help: Setting.pingPath.help)
    var pingPath: String?

    @Option(help: Setting.slowRequestSeconds.help)
    var slowRequestSeconds: String?

    @Option(
        name: .customLong("log-level"),
        help: """
            Log level of the server's logger when serve() sets up logging: \
            \(Setting.logLevelNames.joined(separator: ", ")) (default info). [env: GATEWAY_LOG_LEVEL]
            """
    )
    var logLevelFlag: String?

    /// Options with nothing given; argument-parser fills them in when it parses.
    public init() {}

    /// Checks every flag and its environment variable; argument-parser calls it while parsing.
    /// A CGI request reads no flags and only CGI's variables, which ``GatewayServer`` checks
    /// when it answers: a bad one gets the client a clean `500`, not a malformed response.
    public mutating func validate() throws {
        guard !ProcessMode.isCGIRequest else { return }
        _ = try GatewaySettings(self, environment: .process)
    }

    /// The log level `--log-level` or `GATEWAY_LOG_LEVEL` asks for (`info` when neither), for
    /// an app that sets up its own logging. Valid once parsed: parsing validates it.
    public var logLevel: Logger.Level {
        (try? Setting.logLevel(flag: logLevelFlag, .process)) ?? .info
    }

    /// The arguments an app's command should parse: none for a CGI request (a web server
    /// started the process with `REQUEST_METHOD` set; Apache passes parts of a query string as
    /// arguments, which must never be read as flags), else `CommandLine.arguments` without the
    /// program name. In an `AsyncParsableCommand`, from an async function of the command
    /// (where `main(_:)` is the async one):
    /// `static func start() async { await main(GatewayOptions.commandLineArguments) }`.
    public static var commandLineArguments: [String] {
        ProcessMode.isCGIRequest ? [] : Array(CommandLine.arguments.dropFirst())
    }
}
