public import CoreMetrics
public import Gateway
import HTTPTypes

/// Records each request with swift-metrics: a counter by method and status class, a duration
/// timer, an in-flight meter, and a counter of errors.
///
/// A middleware, so it wraps any application under any server. Durations cover the whole
/// response, a streaming body included: a request is counted when its body has been written,
/// not when the application returned. Metric names follow the OpenTelemetry HTTP server
/// conventions so dashboards built for other servers apply.
///
/// | metric | kind | dimensions |
/// |---|---|---|
/// | `http.server.requests` | counter | `http.request.method`, `http.response.status_class` (`2xx` …) |
/// | `http.server.request.duration` | timer | the same |
/// | `http.server.active_requests` | meter | `http.request.method` |
/// | `http.server.errors` | counter | `http.request.method`, `error.stage` (`respond` or `body`) |
///
/// Methods outside the standard set are recorded as `_OTHER`, so a client cannot create
/// unbounded metric series.
public struct MetricsGatewayMiddleware: GatewayMiddleware {
    /// The labels used; change them to fit an existing naming scheme.
    public struct Labels: Sendable {
        /// Requests answered, by method and status class.
        public var requests = "http.server.requests"
        /// Time from the request reaching the application to the end of its response body.
        public var duration = "http.server.request.duration"
        /// Requests being answered right now.
        public var activeRequests = "http.server.active_requests"
        /// Applications that threw, before (`respond`) or while (`body`) writing the body.
        public var errors = "http.server.errors"

        /// The default, OpenTelemetry-style labels.
        public init() {}
    }

    private let labels: Labels
    private let factory: any MetricsFactory

    /// Records to `factory` (the process-wide `MetricsSystem.factory` by default) under `labels`.
    public init(labels: Labels = Labels(), factory: any MetricsFactory = MetricsSystem.factory) {
        self.labels = labels
        self.factory = factory
    }

    /// Runs `next` and records the request once its response body has been written.
    nonisolated(nonsending) public func respond(
        to environ: Environ,
        next: some GatewayApplication
    ) async throws -> GatewayResponse {
        let method = Self.methodDimension(environ.requestMethod)
        let active = Meter(
            label: labels.activeRequests,
            dimensions: [("http.request.method", method)],
            factory: factory
        )
        active.increment()
        let start = ContinuousClock.now
        var response: GatewayResponse
        do {
            response = try await next.respond(to: environ)
        } catch {
            // The server answers 500 (or 413 for a body too large): record what the client sees.
            let status = error is RequestBodyTooLarge ? 413 : 500
            record(method: method, status: status, start: start, errorStage: "respond")
            active.decrement()
            throw error
        }
        let status = response.status.code
        guard response.body.bytes == nil else {
            record(method: method, status: status, start: start, errorStage: nil)
            active.decrement()
            return response
        }
        let inner = response.body
        let recorder = self
        response.body = GatewayResponseBody(contentLength: inner.contentLength) { writer in
            do {
                try await inner.write(to: &writer)
            } catch {
                recorder.record(method: method, status: status, start: start, errorStage: "body")
                active.decrement()
                throw error
            }
            recorder.record(method: method, status: status, start: start, errorStage: nil)
            active.decrement()
        }
        return response
    }

    private func record(method: String, status: Int, start: ContinuousClock.Instant, errorStage: String?) {
        let dimensions = [("http.request.method", method), ("http.response.status_class", "\(status / 100)xx")]
        Counter(label: labels.requests, dimensions: dimensions, factory: factory).increment()
        Timer(label: labels.duration, dimensions: dimensions, factory: factory)
            .recordInterval(since: start)
        if let errorStage {
            Counter(
                label: labels.errors,
                dimensions: [("http.request.method", method), ("error.stage", errorStage)],
                factory: factory
            ).increment()
        }
    }

    /// The method as a bounded dimension: the RFC 9110 methods and PATCH as sent, else `_OTHER`.
    static func methodDimension(_ method: String) -> String {
        switch method {
        case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH": method
        default: "_OTHER"
        }
    }
}

extension Timer {
    /// Records the time elapsed since `start` on the continuous clock.
    fileprivate func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
