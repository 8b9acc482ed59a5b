import ArgumentParser
import FastCGIServer
import Gateway
import GatewayHTTPServer
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where settings come from besides flags: the process environment, or a table in tests.
/// An empty variable counts as unset (systemd's `Environment=GATEWAY_PORT=` clears it).
struct SettingsEnvironment: Sendable {
    let lookup: @Sendable (String) -> String?

    subscript(name: String) -> String? {
        guard let value = lookup(name), !value.isEmpty else { return nil }
        return value
    }

    static let process = SettingsEnvironment { name in getenv(name).map { String(cString: $0) } }
}

/// One numeric setting: its flag, its variable, the range it must fall in and its default.
///
/// Every range is bounded so that no arithmetic on a value (a limit plus one, seconds to
/// milliseconds or nanoseconds, a sum of per-connection limits) can overflow anywhere.
struct NumericSetting: Sendable {
    let flag: String
    let variable: String
    let range: ClosedRange<Int>
    let defaultValue: Int?
    let summary: String

    /// The help line: what it bounds, its range and default, and its variable.
    var help: ArgumentHelp {
        let fallback = defaultValue.map { ", default \($0)" } ?? ""
        return ArgumentHelp("\(summary) (\(range.lowerBound)…\(range.upperBound)\(fallback)). [env: \(variable)]")
    }

    /// The flag's value, else the variable's, else the default; a malformed or out-of-range
    /// value of either is an error naming it, never a silent default.
    func optionalValue(_ flagValue: String?, _ environment: SettingsEnvironment) throws -> Int? {
        if let flagValue { return try parse(flagValue, source: "--\(flag) \(flagValue)") }
        if let text = environment[variable] { return try parse(text, source: "\(variable)=\(text)") }
        return defaultValue
    }

    /// ``optionalValue(_:_:)`` of a setting that has a default.
    func value(_ flagValue: String?, _ environment: SettingsEnvironment) throws -> Int {
        try optionalValue(flagValue, environment) ?? range.lowerBound
    }

    private func parse(_ text: String, source: String) throws -> Int {
        guard let value = Int(decimalDigits: text), range.contains(value) else {
            throw ValidationError(
                "\(source) is invalid: expected a whole number from \(range.lowerBound) to \(range.upperBound)."
            )
        }
        return value
    }
}

/// The settings of every flag, for the help and for resolving.
enum Setting {
    /// A year: the longest any timeout may be (nanoseconds of it fit `Int64` 290 times over).
    static let year = 365 * 24 * 3600

    static let port = NumericSetting(
        flag: "port",
        variable: "GATEWAY_PORT",
        range: 1...65535,
        defaultValue: nil,
        summary: "Listen for FastCGI on this TCP port"
    )
    static let maxConnections = NumericSetting(
        flag: "max-connections",
        variable: "GATEWAY_MAX_CONNECTIONS",
        range: 1...1_000_000,
        defaultValue: 4096,
        summary: "Most open connections"
    )
    static let maxRequests = NumericSetting(
        flag: "max-requests",
        variable: "GATEWAY_MAX_REQUESTS",
        range: 1...1_000_000,
        defaultValue: 16384,
        summary: "Most requests in flight in the whole server"
    )
    /// FastCGI request ids are 16 bits: no more can be in flight on one connection.
    static let maxRequestsPerConnection = NumericSetting(
        flag: "max-requests-per-connection",
        variable: "GATEWAY_MAX_REQUESTS_PER_CONNECTION",
        range: 1...65535,
        defaultValue: 1024,
        summary: "Most requests in flight on one connection"
    )
    static let maxParamsBytes = NumericSetting(
        flag: "max-params-bytes",
        variable: "GATEWAY_MAX_PARAMS_BYTES",
        range: 1...(1 << 30),
        defaultValue: 1 << 20,
        summary: "Most bytes of CGI params per request"
    )
    static let maxParamsBytesPerConnection = NumericSetting(
        flag: "max-params-bytes-per-connection",
        variable: "GATEWAY_MAX_PARAMS_BYTES_PER_CONNECTION",
        range: 1...(1 << 40),
        defaultValue: 16 << 20,
        summary: "Most bytes of unfinished CGI params held per connection"
    )
    static let maxParams = NumericSetting(
        flag: "max-params",
        variable: "GATEWAY_MAX_PARAMS",
        range: 1...1_000_000,
        defaultValue: 4096,
        summary: "Most CGI params per request"
    )
    static let maxBodyBytes = NumericSetting(
        flag: "max-body-bytes",
        variable: "GATEWAY_MAX_BODY_BYTES",
        range: 0...(1 << 50),
        defaultValue: 1 << 30,
        summary: "Largest request body in bytes; larger ones get 413, in CGI mode too"
    )
    static let outputBufferBytes = NumericSetting(
        flag: "output-buffer-bytes",
        variable: "GATEWAY_OUTPUT_BUFFER_BYTES",
        range: 4096...(1 << 30),
        defaultValue: 256 << 10,
        summary: "Most bytes of output a connection holds unsent before it stops reading"
    )
    static let idleTimeout = NumericSetting(
        flag: "idle-timeout",
        variable: "GATEWAY_IDLE_TIMEOUT",
        range: 0...year,
        defaultValue: 300,
        summary: "Seconds an idle connection stays open; 0 keeps it forever"
    )
    static let paramsTimeout = NumericSetting(
        flag: "params-timeout",
        variable: "GATEWAY_PARAMS_TIMEOUT",
        range: 1...year,
        defaultValue: 60,
        summary: "Seconds a request's params may take to arrive"
    )
    static let stallTimeout = NumericSetting(
        flag: "stall-timeout",
        variable: "GATEWAY_STALL_TIMEOUT",
        range: 1...year,
        defaultValue: 60,
        summary: "Seconds a request may wait for body bytes or for the socket to take output"
    )
    static let closeTimeout = NumericSetting(
        flag: "close-timeout",
        variable: "GATEWAY_CLOSE_TIMEOUT",
        range: 1...year,
        defaultValue: 5,
        summary: "Seconds a closing connection gets to flush its output"
    )
    static let shutdownTimeout = NumericSetting(
        flag: "shutdown-timeout",
        variable: "GATEWAY_SHUTDOWN_TIMEOUT",
        range: 0...year,
        defaultValue: 30,
        summary: "Seconds requests in flight get to finish after SIGTERM"
    )
    static let threads = NumericSetting(
        flag: "threads",
        variable: "GATEWAY_THREADS",
        range: 1...1024,
        defaultValue: nil,
        summary: """
            Event-loop threads; default: the CPUs this process may run on, after taskset, \
            systemd CPUAffinity and cgroup limits
            """
    )

    static let slowRequestSeconds = NumericSetting(
        flag: "slow-request-seconds",
        variable: "GATEWAY_SLOW_REQUEST_SECONDS",
        range: 0...year,
        defaultValue: 5,
        summary: "A request that runs longer is counted as slow and logged with a warning; 0: never"
    )
    static let statusPath = PathSetting(
        flag: "status-path",
        variable: "GATEWAY_STATUS_PATH",
        summary: """
            Answer this request path (SCRIPT_NAME + PATH_INFO, e.g. /status) with the server's status \
            (?json, ?openmetrics or ?prometheus for those formats) instead of the application; off unless set
            """
    )
    static let pingPath = PathSetting(
        flag: "ping-path",
        variable: "GATEWAY_PING_PATH",
        summary: "Answer this request path (e.g. /ping) with 200 pong instead of the application; off unless set"
    )

    static let logLevelNames = Logger.Level.allCases.map(\.rawValue)

    /// `text` as a log level, in any case; an error naming `source` otherwise.
    static func logLevel(_ text: String, source: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError("\(source) is invalid: expected one of \(logLevelNames.joined(separator: ", ")).")
        }
        return level
    }

    /// The flag's level, else `GATEWAY_LOG_LEVEL`'s, else `info`.
    static func logLevel(flag: String?, _ environment: SettingsEnvironment) throws -> Logger.Level {
        if let flag { return try logLevel(flag, source: "--log-level \(flag)") }
        if let text = environment["GATEWAY_LOG_LEVEL"] {
            return try logLevel(text, source: "GATEWAY_LOG_LEVEL=\(text)")
        }
        return .info
    }
}

/// A request path the server answers itself (status, ping): its flag, its variable, its help.
struct PathSetting: Sendable {
    let flag: String
    let variable: String
    let summary: String

    var help: ArgumentHelp { ArgumentHelp("\(summary). [env: \(variable)]") }

    /// The flag's path, else the variable's, else nil; one that does not start with `/`, or
    /// holds a `?`, a space or a control character (it could never match a request path), is
    /// an error naming it.
    func value(_ flagValue: String?, _ environment: SettingsEnvironment) throws -> String? {
        let (source, text): (String, String)
        if let flagValue {
            (source, text) = ("--\(flag) \(flagValue)", flagValue)
        } else if let variable = environment[variable] {
            (source, text) = ("\(self.variable)=\(variable)", variable)
        } else {
            return nil
        }
        guard text.hasPrefix("/"), text.utf8.count <= 1024,
            !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "?") })
        else {
            throw ValidationError(
                "\(source) is invalid: expected a request path that starts with /, e.g. /status, without ? or spaces."
            )
        }
        return text
    }
}

/// What a CGI request reads: environment variables only, never flags (Apache passes parts
/// of a query string as arguments).
struct CGISettings: Sendable {
    var logLevel: Logger.Level
    /// `GATEWAY_MAX_BODY_BYTES`: the largest body a CGI request may declare.
    var maxBodyBytes: Int

    init(environment: SettingsEnvironment) throws {
        logLevel = try Setting.logLevel(flag: nil, environment)
        maxBodyBytes = try Setting.maxBodyBytes.value(nil, environment)
    }
}

/// Everything the options and the environment say, checked: what ``GatewayServer`` runs with.
struct GatewaySettings: Sendable {
    /// Where to listen, or nil when neither flags nor variables name an address.
    var address: ListenAddress?
    /// `--http`/`GATEWAY_HTTP`: the development HTTP server's address, instead of FastCGI.
    var http: HTTPServerAddress?
    var limits: ServerLimits
    var shutdownTimeoutSeconds: Int
    /// Event-loop threads, or nil for one per usable CPU.
    var threads: Int?
    var logLevel: Logger.Level
    /// The request path answered with the status page, or nil (off).
    var statusPath: String?
    /// The request path answered with `pong`, or nil (off).
    var pingPath: String?
    /// Seconds after which a request counts as slow; 0: never.
    var slowRequestSeconds: Int

    init(_ options: GatewayOptions, environment: SettingsEnvironment) throws {
        // A flag names the mode over the other mode's variables; two flags, or two variables,
        // naming both modes are an error.
        let httpFlag = options.http != nil
        let addressFlag = options.socket != nil || options.port != nil
        if httpFlag, addressFlag {
            throw ValidationError(
                "--http serves HTTP for development instead of FastCGI: pass it without --socket or --port."
            )
        }
        let fastCGIAddress = try Self.address(options, environment)
        let httpAddress = try Self.httpAddress(options, environment)
        if httpFlag {
            (address, http) = (nil, httpAddress)
        } else if addressFlag {
            (address, http) = (fastCGIAddress, nil)
        } else {
            guard fastCGIAddress == nil || httpAddress == nil else {
                throw ValidationError(
                    "GATEWAY_HTTP serves HTTP for development instead of FastCGI: set it without GATEWAY_SOCKET or GATEWAY_PORT."
                )
            }
            (address, http) = (fastCGIAddress, httpAddress)
        }
        var limits = ServerLimits()
        limits.maxConnections = try Setting.maxConnections.value(options.maxConnections, environment)
        limits.maxRequests = try Setting.maxRequests.value(options.maxRequests, environment)
        limits.maxRequestsPerConnection = try Setting.maxRequestsPerConnection.value(
            options.maxRequestsPerConnection,
            environment
        )
        limits.maxParamsBytes = try Setting.maxParamsBytes.value(options.maxParamsBytes, environment)
        limits.maxParamsBytesPerConnection = try Setting.maxParamsBytesPerConnection.value(
            options.maxParamsBytesPerConnection,
            environment
        )
        limits.maxParamsPairs = try Setting.maxParams.value(options.maxParams, environment)
        limits.maxBodyBytes = try Setting.maxBodyBytes.value(options.maxBodyBytes, environment)
        limits.outputBufferBytes = try Setting.outputBufferBytes.value(options.outputBufferBytes, environment)
        limits.idleTimeoutSeconds = Int64(try Setting.idleTimeout.value(options.idleTimeout, environment))
        limits.paramsTimeoutSeconds = Int64(
            try Setting.paramsTimeout.value(options.paramsTimeout, environment)
        )
        limits.stallTimeoutSeconds = Int64(try Setting.stallTimeout.value(options.stallTimeout, environment))
        limits.closeTimeoutSeconds = Int64(try Setting.closeTimeout.value(options.closeTimeout, environment))
        self.limits = limits
        shutdownTimeoutSeconds = try Setting.shutdownTimeout.value(options.shutdownTimeout, environment)
        threads = try Setting.threads.optionalValue(options.threads, environment)
        logLevel = try Setting.logLevel(flag: options.logLevelFlag, environment)
        statusPath = try Setting.statusPath.value(options.statusPath, environment)
        pingPath = try Setting.pingPath.value(options.pingPath, environment)
        if let statusPath, statusPath == pingPath {
            throw ValidationError("--status-path and --ping-path both name \(statusPath): give them different paths.")
        }
        slowRequestSeconds = try Setting.slowRequestSeconds.value(options.slowRequestSeconds, environment)
    }

    /// The longest Unix socket path SwiftNIO binds: what every platform's `sun_path` holds.
    static let maxSocketPathBytes = 103

    /// `--socket` or `--port`, else `GATEWAY_SOCKET` or `GATEWAY_PORT`: a flag overrides the
    /// environment's address, and two addresses from the same source are an error.
    private static func address(_ options: GatewayOptions, _ environment: SettingsEnvironment) throws -> ListenAddress?
    {
        let socket: String?
        let port: Int?
        if options.socket != nil || options.port != nil {
            guard options.socket == nil || options.port == nil else {
                throw ValidationError("--socket and --port name two addresses: pass one of them.")
            }
            socket = options.socket
            port = try Setting.port.optionalValue(options.port, SettingsEnvironment { _ in nil })
        } else {
            socket = environment["GATEWAY_SOCKET"]
            port = try Setting.port.optionalValue(nil, environment)
            guard socket == nil || port == nil else {
                throw ValidationError(
                    "GATEWAY_SOCKET and GATEWAY_PORT name two addresses: set one of them."
                )
            }
        }
        // Checked even when unused, so a typo never waits for the day it matters.
        let mode = try socketMode(options.socketMode, environment)
        let host = options.host ?? environment["GATEWAY_HOST"] ?? "127.0.0.1"
        guard !host.isEmpty else { throw ValidationError("--host must not be empty.") }
        if let socket {
            guard socket.utf8.count <= maxSocketPathBytes, !socket.utf8.contains(0) else {
                throw ValidationError(
                    "the socket path \(socket) is invalid: a Unix socket address holds at most \(maxSocketPathBytes) bytes."
                )
            }
            let owner = options.socketOwner ?? environment["GATEWAY_SOCKET_OWNER"]
            let group = options.socketGroup ?? environment["GATEWAY_SOCKET_GROUP"]
            return .unix(path: socket, permissions: SocketPermissions(mode: mode, owner: owner, group: group))
        }
        if let port { return .tcp(host: host, port: port) }
        return nil
    }

    /// `--http`, else `GATEWAY_HTTP`: `host:port`, `[ipv6]:port` or `:port`.
    private static func httpAddress(
        _ options: GatewayOptions,
        _ environment: SettingsEnvironment
    ) throws -> HTTPServerAddress? {
        let (source, text): (String, String)
        if let flag = options.http {
            (source, text) = ("--http \(flag)", flag)
        } else if let variable = environment["GATEWAY_HTTP"] {
            (source, text) = ("GATEWAY_HTTP=\(variable)", variable)
        } else {
            return nil
        }
        do {
            return try HTTPServerAddress(parsing: text)
        } catch {
            throw ValidationError("\(source) is invalid: \(error.reason).")
        }
    }

    /// The socket file's mode: octal digits, at most `0777`.
    private static func socketMode(_ flag: String?, _ environment: SettingsEnvironment) throws -> UInt32 {
        let source: String
        let text: String
        if let flag {
            (source, text) = ("--socket-mode \(flag)", flag)
        } else if let variable = environment["GATEWAY_SOCKET_MODE"] {
            (source, text) = ("GATEWAY_SOCKET_MODE=\(variable)", variable)
        } else {
            return 0o660
        }
        guard (1...4).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x37).contains($0) }),
            let mode = UInt32(text, radix: 8), mode <= 0o777
        else {
            throw ValidationError("\(source) is invalid: expected an octal mode from 0 to 0777, e.g. 0660.")
        }
        return mode
    }
}
