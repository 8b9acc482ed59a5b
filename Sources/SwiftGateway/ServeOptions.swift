import ArgumentParser
import FastCGIServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The command line of every swift-gateway application run as a FastCGI server.
///
/// Each option can also come from an environment variable (named in its help), so a systemd
/// unit or spawn-fcgi line can configure the app without flags.
struct ServeOptions: ParsableArguments {
    static let configuration = CommandConfiguration(
        abstract: "Serve this web application over FastCGI (or run it once as CGI).",
        discussion: """
            How the mode is chosen:
              • --socket PATH or --port N: listen for FastCGI connections (nginx fastcgi_pass,
                Apache mod_proxy_fcgi).
              • a listening socket on standard input (spawn-fcgi, Apache mod_fcgid,
                cgi-fcgi -start): serve FastCGI on it.
              • otherwise, with REQUEST_METHOD set by a web server: answer one CGI request.

            Examples:
              app --socket /run/app/fcgi.sock          # then: fastcgi_pass unix:/run/app/fcgi.sock;
              app --port 9000                          # 127.0.0.1:9000; use --host :: for IPv6
              spawn-fcgi -s /run/app/fcgi.sock -M 0660 -- ./app

            TCP peers are limited to FCGI_WEB_SERVER_ADDRS (comma-separated) when it is set.
            SIGTERM or SIGINT stops accepting, lets requests in flight finish, and exits 0.
            """
    )

    @Option(help: "Listen on this Unix socket path. [env: GATEWAY_SOCKET]")
    var socket: String?

    @Option(help: "Mode of the Unix socket file, in octal. [env: GATEWAY_SOCKET_MODE]")
    var socketMode: String = environment("GATEWAY_SOCKET_MODE") ?? "0660"

    @Option(help: "Owner (user name or id) of the Unix socket file. [env: GATEWAY_SOCKET_OWNER]")
    var socketOwner: String?

    @Option(help: "Group (name or id) of the Unix socket file. [env: GATEWAY_SOCKET_GROUP]")
    var socketGroup: String?

    @Option(help: "Listen on this TCP port. [env: GATEWAY_PORT]")
    var port: Int?

    @Option(help: "Address to listen on with --port. [env: GATEWAY_HOST]")
    var host: String = environment("GATEWAY_HOST") ?? "127.0.0.1"

    @Option(help: "Most open connections. [env: GATEWAY_MAX_CONNECTIONS]")
    var maxConnections: Int = environment("GATEWAY_MAX_CONNECTIONS").flatMap { Int($0) } ?? 4096

    @Option(help: "Most requests in flight in the whole server. [env: GATEWAY_MAX_REQUESTS]")
    var maxRequests: Int = environment("GATEWAY_MAX_REQUESTS").flatMap { Int($0) } ?? 16384

    @Option(help: "Most requests in flight on one connection. [env: GATEWAY_MAX_REQUESTS_PER_CONNECTION]")
    var maxRequestsPerConnection: Int = environment("GATEWAY_MAX_REQUESTS_PER_CONNECTION").flatMap { Int($0) } ?? 1024

    @Option(help: "Most bytes of CGI params per request. [env: GATEWAY_MAX_PARAMS_BYTES]")
    var maxParamsBytes: Int = environment("GATEWAY_MAX_PARAMS_BYTES").flatMap { Int($0) } ?? 1 << 20

    @Option(
        help: """
            Most bytes of unfinished CGI params held per connection. \
            [env: GATEWAY_MAX_PARAMS_BYTES_PER_CONNECTION]
            """
    )
    var maxParamsBytesPerConnection: Int =
        environment("GATEWAY_MAX_PARAMS_BYTES_PER_CONNECTION").flatMap { Int($0) } ?? 16 << 20

    @Option(help: "Most CGI params per request. [env: GATEWAY_MAX_PARAMS]")
    var maxParams: Int = environment("GATEWAY_MAX_PARAMS").flatMap { Int($0) } ?? 4096

    @Option(help: "Largest request body in bytes; larger ones get 413. [env: GATEWAY_MAX_BODY_BYTES]")
    var maxBodyBytes: Int = environment("GATEWAY_MAX_BODY_BYTES").flatMap { Int($0) } ?? 1 << 30

    @Option(help: "Seconds an idle connection stays open (0: forever). [env: GATEWAY_IDLE_TIMEOUT]")
    var idleTimeout: Int64 = environment("GATEWAY_IDLE_TIMEOUT").flatMap { Int64($0) } ?? 300

    @Option(help: "Seconds a request's params may take from its start (0: forever). [env: GATEWAY_PARAMS_TIMEOUT]")
    var paramsTimeout: Int64 = environment("GATEWAY_PARAMS_TIMEOUT").flatMap { Int64($0) } ?? 60

    @Option(
        help: """
            Seconds a request body or the socket's output may make no progress (0: forever). \
            [env: GATEWAY_STALL_TIMEOUT]
            """
    )
    var stallTimeout: Int64 = environment("GATEWAY_STALL_TIMEOUT").flatMap { Int64($0) } ?? 60

    @Option(help: "Seconds a closing connection gets to flush (0: forever). [env: GATEWAY_CLOSE_TIMEOUT]")
    var closeTimeout: Int64 = environment("GATEWAY_CLOSE_TIMEOUT").flatMap { Int64($0) } ?? 5

    @Option(help: "Most response bytes queued per connection. [env: GATEWAY_OUTPUT_BUFFER_BYTES]")
    var outputBufferBytes: Int = environment("GATEWAY_OUTPUT_BUFFER_BYTES").flatMap { Int($0) } ?? 256 << 10

    @Option(help: "Seconds requests in flight get to finish after SIGTERM. [env: GATEWAY_SHUTDOWN_TIMEOUT]")
    var shutdownTimeout: Int64 = environment("GATEWAY_SHUTDOWN_TIMEOUT").flatMap { Int64($0) } ?? 30

    @Option(
        help: """
            Event-loop threads (default: the CPUs this process may run on, after taskset, \
            systemd CPUAffinity and cgroup limits). [env: GATEWAY_THREADS]
            """
    )
    var threads: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical. [env: GATEWAY_LOG_LEVEL]")
    var logLevel: String = environment("GATEWAY_LOG_LEVEL") ?? "info"

    // Optional options take their environment variable here (ArgumentParser wants no default).
    private var socketPath: String? { socket ?? environment("GATEWAY_SOCKET") }
    private var tcpPort: Int? { port ?? environment("GATEWAY_PORT").flatMap { Int($0) } }
    /// The event-loop threads asked for, or nil for one per usable CPU.
    var eventLoopThreads: Int? { threads ?? environment("GATEWAY_THREADS").flatMap { Int($0) } }

    func validate() throws {
        if socket != nil && port != nil { throw ValidationError("Pass either --socket or --port, not both.") }
        if let port = tcpPort, !(1...65535).contains(port) { throw ValidationError("--port must be 1…65535.") }
        if let threads = eventLoopThreads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if UInt32(socketMode, radix: 8) == nil { throw ValidationError("--socket-mode must be octal, e.g. 0660.") }
    }

    /// The address the flags ask for, or nil when they name none.
    var requestedAddress: ListenAddress? {
        if let socket = socketPath {
            let permissions = SocketPermissions(
                mode: UInt32(socketMode, radix: 8) ?? 0o660,
                owner: socketOwner ?? environment("GATEWAY_SOCKET_OWNER"),
                group: socketGroup ?? environment("GATEWAY_SOCKET_GROUP")
            )
            return .unix(path: socket, permissions: permissions)
        }
        if let port = tcpPort { return .tcp(host: host, port: port) }
        return nil
    }

    var limits: ServerLimits {
        var limits = ServerLimits()
        limits.maxConnections = maxConnections
        limits.maxRequests = maxRequests
        limits.maxRequestsPerConnection = maxRequestsPerConnection
        limits.maxParamsBytes = maxParamsBytes
        limits.maxParamsBytesPerConnection = maxParamsBytesPerConnection
        limits.maxParamsPairs = maxParams
        limits.maxBodyBytes = maxBodyBytes
        limits.idleTimeoutSeconds = idleTimeout
        limits.paramsTimeoutSeconds = paramsTimeout
        limits.stallTimeoutSeconds = stallTimeout
        limits.closeTimeoutSeconds = closeTimeout
        limits.outputBufferBytes = outputBufferBytes
        return limits
    }
}

func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
