import FastCGIServer
import Gateway
import HTTPTypes
import Logging
import Synchronization

/// What the server answers itself, before the application, and how it counts requests.
struct StatusConfiguration: Sendable {
    /// The request path answered with the status page, or nil.
    var statusPath: String?
    /// The request path answered with `pong`, or nil.
    var pingPath: String?
    /// Seconds after which a request counts as slow; 0: never.
    var slowRequestSeconds: Int
    /// The limits the status page shows beside the figures.
    var maxRequests: Int
    var maxConnections: Int

    init(_ settings: GatewaySettings) {
        statusPath = settings.statusPath
        pingPath = settings.pingPath
        slowRequestSeconds = settings.slowRequestSeconds
        maxRequests = settings.limits.maxRequests
        maxConnections = settings.limits.maxConnections
    }
}

/// Wraps the application of a `GatewayServer` (FastCGI or the HTTP development server):
/// answers the status and ping paths (PHP-FPM's `pm.status_path` and `ping.path`) without
/// calling the application, and counts every request it sees into the server's statistics
/// (total, in flight, the most in flight, slow ones, each slow one logged).
///
/// A path matches when the environ's `path` (`SCRIPT_NAME` + `PATH_INFO`, the path the
/// application would route on) equals it: the same value whether nginx sends the path in
/// `SCRIPT_NAME` (Debian's `fastcgi_params`) or in `PATH_INFO` (`SCRIPT_NAME ""`), and never
/// the raw `REQUEST_URI`, whose percent-encoding and query a client controls.
///
/// Only responder requests: one whose `FCGI_ROLE` (mod_authnz_fcgi sends `AUTHORIZER`) names
/// another role goes to the application, since an Authorizer's `200` allows the request it
/// was asked about.
///
/// A request ends, for the in-flight figure and the slow threshold, when its response body
/// has been written (a streaming body included), or when the application threw.
struct StatusApplication<Wrapped: GatewayApplication>: GatewayApplication {
    let wrapped: Wrapped
    let statistics: ServerStatistics
    let configuration: StatusConfiguration
    private let slowThreshold: Duration?

    init(_ wrapped: Wrapped, statistics: ServerStatistics, configuration: StatusConfiguration) {
        self.wrapped = wrapped
        self.statistics = statistics
        self.configuration = configuration
        slowThreshold = configuration.slowRequestSeconds > 0 ? .seconds(configuration.slowRequestSeconds) : nil
    }

    nonisolated(nonsending) func respond(to environ: Environ) async throws -> GatewayResponse {
        statistics.requestStarted()
        // Responder requests only: an Authorizer's 200 would allow the request it was asked about.
        if configuration.statusPath != nil || configuration.pingPath != nil,
            environ["FCGI_ROLE"].map({ $0 == "RESPONDER" }) ?? true
        {
            let path = environ.path
            if path == configuration.pingPath {
                defer { statistics.requestFinished() }
                return Self.answer(environ, contentType: "text/plain; charset=utf-8", body: "pong")
            }
            if path == configuration.statusPath {
                // Taken while this request counts: it is among the requests and in flight.
                defer { statistics.requestFinished() }
                let format = StatusPage.Format(queryString: environ.queryString)
                return Self.answer(
                    environ,
                    contentType: format.contentType,
                    body: StatusPage.render(report, as: format)
                )
            }
        }
        let timing = RequestTiming(slowThreshold: slowThreshold)
        let response: GatewayResponse
        do {
            response = try await wrapped.respond(to: environ)
        } catch {
            statistics.requestFinished(slow: timing.isSlow(environ))
            throw error
        }
        guard response.body.bytes == nil else {
            statistics.requestFinished(slow: timing.isSlow(environ))
            return response
        }
        let completion = StreamCompletion(statistics: statistics, timing: timing, environ: environ)
        var streamed = response
        let inner = response.body
        streamed.body = GatewayResponseBody(contentLength: inner.contentLength) { writer in
            defer { completion.finish() }
            try await inner.write(to: &writer)
        }
        return streamed
    }

    /// The status page's figures now.
    var report: StatusReport {
        StatusReport(
            statistics: statistics.snapshot(),
            maxRequests: configuration.maxRequests,
            maxConnections: configuration.maxConnections,
            slowRequestSeconds: configuration.slowRequestSeconds
        )
    }

    /// A `200` with `body` for GET and HEAD (the server drops a HEAD's body), never cached; a
    /// `405` for other methods.
    private static func answer(_ environ: Environ, contentType: String, body: String) -> GatewayResponse {
        guard environ.requestMethod == "GET" || environ.requestMethod == "HEAD" else {
            return GatewayResponse(
                status: .methodNotAllowed,
                headers: [.allow: "GET, HEAD", .cacheControl: "no-store"],
                body: .empty
            )
        }
        return GatewayResponse(
            headers: [.contentType: contentType, .cacheControl: "no-store"],
            body: GatewayResponseBody(string: body)
        )
    }
}

/// When a request started, to tell (and log) whether it was slow. Reads the clock only
/// when slow requests are counted.
private struct RequestTiming: Sendable {
    let slowThreshold: Duration?
    let started: ContinuousClock.Instant?

    init(slowThreshold: Duration?) {
        self.slowThreshold = slowThreshold
        started = slowThreshold == nil ? nil : .now
    }

    /// Whether the request has run longer than the threshold; logs a warning naming the
    /// request and its duration when it has (in spirit, PHP-FPM's slowlog).
    func isSlow(_ environ: Environ) -> Bool {
        guard let started, let slowThreshold else { return false }
        let duration = ContinuousClock.now - started
        guard duration > slowThreshold else { return false }
        let hundredths = duration.components.seconds * 100 + duration.components.attoseconds / 10_000_000_000_000_000
        let seconds = "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
        environ.logger.warning(
            "slow request: \(environ.requestMethod) \(environ.path) took \(seconds) s, over --slow-request-seconds \(slowThreshold.components.seconds)"
        )
        return true
    }
}

/// Ends a streaming response's count exactly once: when its body finished, or, should the
/// body never run (a response the server rejects before its body), when it is released.
private final class StreamCompletion: Sendable {
    private let statistics: ServerStatistics
    private let timing: RequestTiming
    private let environ: Environ
    private let finished = Atomic<Bool>(false)

    init(statistics: ServerStatistics, timing: RequestTiming, environ: Environ) {
        self.statistics = statistics
        self.timing = timing
        self.environ = environ
    }

    func finish() {
        guard !finished.exchange(true, ordering: .relaxed) else { return }
        statistics.requestFinished(slow: timing.isSlow(environ))
    }

    deinit { finish() }
}
