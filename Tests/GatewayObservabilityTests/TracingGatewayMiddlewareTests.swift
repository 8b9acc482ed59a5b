import Gateway
import GatewayObservability
import InMemoryTracing
import Testing
import Tracing

@Suite("TracingGatewayMiddleware")
struct TracingGatewayMiddlewareTests {
    @Test("a server span named after method and path, with the HTTP attributes and status")
    func serverSpan() async throws {
        let tracer = InMemoryTracer()
        let app = ClosureApplication { _ in .text("hi", status: .created) }
            .wrapped(in: TracingGatewayMiddleware(tracer: tracer))
        _ = try await answer(app, makeEnviron("POST", "/items", query: "a=1", headers: [("HTTP_USER_AGENT", "tester")]))
        let span = try #require(tracer.finishedSpans.first)
        #expect(tracer.finishedSpans.count == 1)
        #expect(span.operationName == "POST /items")
        #expect(span.kind == .server)
        #expect(span.attributes["http.request.method"]?.toSpanAttribute() == .string("POST"))
        #expect(span.attributes["url.path"]?.toSpanAttribute() == .string("/items"))
        #expect(span.attributes["url.query"]?.toSpanAttribute() == .string("a=1"))
        #expect(span.attributes["user_agent.original"]?.toSpanAttribute() == .string("tester"))
        #expect(span.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(201))
        #expect(span.status == nil)
    }

    @Test("continues the trace the client propagated, and the app's spans are its children")
    func continuesTrace() async throws {
        let tracer = InMemoryTracer()
        let app = ClosureApplication { _ in
            let child = tracer.startSpan("inside the app")
            child.end()
            return .text("ok")
        }.wrapped(in: TracingGatewayMiddleware(tracer: tracer))
        // InMemoryTracer propagates under its own header names; a W3C tracer asks for
        // `traceparent` and `tracestate` through the same extractor.
        let environ = makeEnviron(
            "GET",
            "/",
            headers: [("HTTP_IN_MEMORY_TRACE_ID", "trace-from-client"), ("HTTP_IN_MEMORY_SPAN_ID", "span-from-client")]
        )
        _ = try await answer(app, environ)
        let server = try #require(tracer.finishedSpans.first { $0.operationName == "GET /" })
        let child = try #require(tracer.finishedSpans.first { $0.operationName == "inside the app" })
        #expect(server.traceID == "trace-from-client")
        #expect(server.parentSpanID == "span-from-client")
        #expect(child.traceID == "trace-from-client")
        #expect(child.parentSpanID == server.spanID)
    }

    @Test("the extractor reads W3C traceparent and tracestate from HTTP_* variables")
    func extractsW3CHeaders() {
        let environ = makeEnviron(
            headers: [
                ("HTTP_TRACEPARENT", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ("HTTP_TRACESTATE", "vendor=value"),
            ]
        )
        let extractor = EnvironExtractor()
        #expect(
            extractor.extract(key: "traceparent", from: environ)
                == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        )
        #expect(extractor.extract(key: "tracestate", from: environ) == "vendor=value")
        #expect(extractor.extract(key: "baggage", from: environ) == nil)
    }

    @Test("a streaming body's span ends when the body does")
    func streamingSpanEndsWithBody() async throws {
        let tracer = InMemoryTracer()
        let app = ClosureApplication { _ in
            GatewayResponse(body: GatewayResponseBody { writer in try await writer.write("streamed") })
        }.wrapped(in: TracingGatewayMiddleware(tracer: tracer))
        let response = try await app.respond(to: makeEnviron("GET", "/stream"))
        #expect(tracer.finishedSpans.isEmpty)
        #expect(tracer.activeSpans.count == 1)
        var writer = CollectingWriter()
        try await response.body.write(to: &writer)
        #expect(tracer.finishedSpans.count == 1)
        #expect(tracer.activeSpans.isEmpty)
    }

    @Test("errors are recorded and mark the span failed")
    func errors() async throws {
        let tracer = InMemoryTracer()
        let app = ClosureApplication { environ in
            if environ.pathInfo == "/throws" { throw Boom() }
            return GatewayResponse(
                body: GatewayResponseBody { writer in
                    try await writer.write("partial")
                    throw Boom()
                }
            )
        }.wrapped(in: TracingGatewayMiddleware(tracer: tracer))
        await #expect(throws: Boom.self) { _ = try await answer(app, makeEnviron("GET", "/throws")) }
        await #expect(throws: Boom.self) { _ = try await answer(app, makeEnviron("GET", "/body")) }
        #expect(tracer.finishedSpans.count == 2)
        for span in tracer.finishedSpans {
            #expect(span.status?.code == .error)
            #expect(span.errors.count == 1)
        }
        let thrown = try #require(tracer.finishedSpans.first { $0.operationName == "GET /throws" })
        #expect(thrown.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(500))
    }
}
