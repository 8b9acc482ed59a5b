import ArgumentParser
import NIOCore
import NIOPosix

/// fcgi-load: a FastCGI load generator. It speaks FastCGI straight to an application's socket,
/// with no web server in between, so it measures the application alone: connection per
/// request or kept connections, many requests multiplexed on each, uploads and downloads.
@main
struct FCGILoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fcgi-load",
        abstract: "Load a FastCGI application directly over its socket.",
        discussion: """
            Runs until --requests have completed or --duration has passed, whichever comes first; \
            requests still unanswered --timeout seconds after that count as timeouts. \
            Prints a human summary, then one line starting with "result:" of key=value pairs.
            """
    )

    @Option(help: "Unix socket of the FastCGI application.")
    var socket: String?

    @Option(help: "TCP port of the FastCGI application (on --host).")
    var port: Int?

    @Option(help: "Host for --port.")
    var host = "127.0.0.1"

    @Option(help: "Connections kept busy at once.")
    var connections = 1

    @Option(help: "Requests in flight per connection, multiplexed on distinct request ids (needs --keep-conn above 1).")
    var inFlight = 1

    @Option(help: "Stop after this many requests.")
    var requests = 10_000_000

    @Option(help: "Stop after this many seconds.")
    var duration: Double = 10

    @Option(help: "Seconds to wait for requests still in flight once stopped.")
    var timeout: Double = 2

    @Option(help: "Request path, with an optional ?query.")
    var path = "/hello"

    @Option(
        name: .customLong("param"),
        help: "Send an extra CGI variable NAME=VALUE (repeatable), e.g. SCRIPT_FILENAME for PHP-FPM."
    )
    var extraParams: [String] = []

    @Flag(help: "Set FCGI_KEEP_CONN and reuse each connection; without it, a connection per request.")
    var keepConn = false

    @Option(help: "Send a request body (FCGI_STDIN) of this many bytes with each request (POST; use --path /count).")
    var upload: Int?

    @Flag(help: "Report response throughput (use with --path /big?bytes=N); stdout bytes are always counted.")
    var download = false

    func validate() throws {
        guard (socket == nil) != (port == nil) else { throw ValidationError("give exactly one of --socket and --port") }
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard (1...65535).contains(inFlight) else { throw ValidationError("--in-flight must be 1...65535") }
        guard inFlight == 1 || keepConn else {
            throw ValidationError("--in-flight above 1 multiplexes on a kept connection: add --keep-conn")
        }
        guard requests >= 1 else { throw ValidationError("--requests must be at least 1") }
        guard duration > 0, timeout >= 0 else { throw ValidationError("--duration must be positive") }
        guard upload.map({ $0 >= 0 }) ?? true else { throw ValidationError("--upload must not be negative") }
        guard path.hasPrefix("/") else { throw ValidationError("--path must start with /") }
        for param in extraParams where !param.contains("=") {
            throw ValidationError("--param takes NAME=VALUE, got \(param)")
        }
    }

    func run() async throws {
        let target: LoadPlan.Target = if let socket { .unix(socket) } else { .tcp(host, port!) }
        let plan = LoadPlan(
            target: target,
            connections: connections,
            inFlight: inFlight,
            requests: requests,
            duration: .nanoseconds(Int64(duration * 1e9)),
            timeout: .nanoseconds(Int64(timeout * 1e9)),
            path: path,
            extraParams: extraParams.map { param in
                let parts = param.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), String(parts[1]))
            },
            keepConnection: keepConn,
            uploadBytes: upload ?? 0,
            download: download
        )
        // One event loop: the client is pinned to one CPU when it measures a server.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let report = try await loop.flatSubmit { LoadRun(plan: plan, eventLoop: loop).start() }.get()
        try await group.shutdownGracefully()
        print(report.summary(plan: plan))
        print(report.resultLine)
        if report.completed == 0 { throw ExitCode(1) }
    }
}
