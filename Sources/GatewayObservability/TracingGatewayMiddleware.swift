public import Gateway
import HTTPTypes
public import Tracing

/// Starts a server span for each request with swift-distributed-tracing, continuing the trace
/// the client propagated (W3C `traceparent`/`tracestate`, read from the environ through
/// ``EnvironExtractor``).
///
/// The span is named `METHOD /path`, is of kind `server`, carries the OpenTelemetry HTTP
/// semantic attributes (method, path, query, scheme, server address and port, client
/// address, user agent, status code), and ends when the response body has been written,
/// streaming bodies included. A thrown error is recorded on the span and sets its status
/// to error, as does a 5xx status. The application runs with the span's context as
/// `ServiceContext.current`, so its own spans become children of this one.
public struct TracingGatewayMiddleware: GatewayMiddleware {
    private let tracer: any Tracer

    /// Traces through `tracer` (the one bootstrapped with `InstrumentationSystem` by default).
    public init(tracer: any Tracer = InstrumentationSystem.tracer) {
        self.tracer = tracer
    }

    /// Runs `next` inside a server span that ends when the response body has been written.
    nonisolated(nonsending) public func respond(
        to environ: Environ,
        next: some GatewayApplication
    ) async throws -> GatewayResponse {
        var context = ServiceContext.current ?? .topLevel
        tracer.extract(environ, into: &context, using: EnvironExtractor())
        let span = tracer.startSpan("\(environ.requestMethod) \(environ.path)", context: context, ofKind: .server)
        Self.setRequestAttributes(of: environ, on: span)
        var response: GatewayResponse
        do {
            response = try await ServiceContext.withValue(span.context) {
                try await next.respond(to: environ)
            }
        } catch {
            span.recordError(error)
            let status = error is RequestBodyTooLarge ? 413 : 500
            span.attributes["http.response.status_code"] = status
            span.setStatus(SpanStatus(code: .error))
            span.end()
            throw error
        }
        let status = response.status.code
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        guard response.body.bytes == nil else {
            span.end()
            return response
        }
        let inner = response.body
        let spanContext = span.context
        response.body = GatewayResponseBody(contentLength: inner.contentLength) { writer in
            do {
                try await ServiceContext.withValue(spanContext) {
                    try await inner.write(to: &writer)
                }
            } catch {
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error))
                span.end()
                throw error
            }
            span.end()
        }
        return response
    }

    private static func setRequestAttributes(of environ: Environ, on span: any Span) {
        span.attributes["http.request.method"] = environ.requestMethod
        span.attributes["url.path"] = environ.path
        if !environ.queryString.isEmpty { span.attributes["url.query"] = environ.queryString }
        span.attributes["url.scheme"] = environ.urlScheme
        if let protocolVersion = environ.serverProtocol, protocolVersion.hasPrefix("HTTP/") {
            span.attributes["network.protocol.version"] = String(protocolVersion.dropFirst(5))
        }
        if let host = environ["HTTP_HOST"] ?? environ.serverName { span.attributes["server.address"] = host }
        if let port = environ.serverPort { span.attributes["server.port"] = port }
        if let client = environ.remoteAddress { span.attributes["client.address"] = client }
        if let agent = environ["HTTP_USER_AGENT"] { span.attributes["user_agent.original"] = agent }
        if let length = environ.contentLength { span.attributes["http.request.body.size"] = length }
    }
}
