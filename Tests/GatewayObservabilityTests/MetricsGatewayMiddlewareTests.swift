import Gateway
import GatewayObservability
import MetricsTestKit
import Synchronization
import Testing

@Suite("MetricsGatewayMiddleware")
struct MetricsGatewayMiddlewareTests {
    @Test("counts requests by method and status class, times them, tracks requests in flight")
    func countsAndTimes() async throws {
        let metrics = TestMetrics()
        let app = ClosureApplication { environ in
            environ.pathInfo == "/missing" ? .status(.notFound) : .text("hello")
        }.wrapped(in: MetricsGatewayMiddleware(factory: metrics))
        _ = try await answer(app, makeEnviron("GET", "/"))
        _ = try await answer(app, makeEnviron("GET", "/"))
        _ = try await answer(app, makeEnviron("GET", "/missing"))
        _ = try await answer(app, makeEnviron("BREW", "/"))
        let ok = try metrics.expectCounter(
            "http.server.requests",
            [("http.request.method", "GET"), ("http.response.status_class", "2xx")]
        )
        #expect(ok.totalValue == 2)
        let missing = try metrics.expectCounter(
            "http.server.requests",
            [("http.request.method", "GET"), ("http.response.status_class", "4xx")]
        )
        #expect(missing.totalValue == 1)
        // A method outside the standard set cannot make a metric series of its own.
        let other = try metrics.expectCounter(
            "http.server.requests",
            [("http.request.method", "_OTHER"), ("http.response.status_class", "2xx")]
        )
        #expect(other.totalValue == 1)
        let timer = try metrics.expectTimer(
            "http.server.request.duration",
            [("http.request.method", "GET"), ("http.response.status_class", "2xx")]
        )
        #expect(timer.values.count == 2)
        let active = try metrics.expectMeter("http.server.active_requests", [("http.request.method", "GET")])
        #expect(active.lastValue == 0)
        #expect(active.values.contains(1))
    }

    @Test("a streaming body is counted when it ends, not when the application returns")
    func streamingCountedAtEnd() async throws {
        let metrics = TestMetrics()
        let app = ClosureApplication { _ in
            GatewayResponse(
                body: GatewayResponseBody { writer in
                    try await writer.write("a")
                    try await writer.write("b")
                }
            )
        }.wrapped(in: MetricsGatewayMiddleware(factory: metrics))
        let response = try await app.respond(to: makeEnviron("POST", "/stream"))
        #expect(metrics.counters(label: "http.server.requests").isEmpty)
        let active = try metrics.expectMeter("http.server.active_requests", [("http.request.method", "POST")])
        #expect(active.lastValue == 1)
        var writer = CollectingWriter()
        try await response.body.write(to: &writer)
        #expect(writer.bytes == Array("ab".utf8))
        #expect(metrics.counterTotal(label: "http.server.requests") == 1)
        #expect(active.lastValue == 0)
    }

    @Test("errors are counted as 5xx, before and during the body")
    func errors() async throws {
        let metrics = TestMetrics()
        let app = ClosureApplication { environ in
            if environ.pathInfo == "/throws" { throw Boom() }
            return GatewayResponse(
                body: GatewayResponseBody { writer in
                    try await writer.write("partial")
                    throw Boom()
                }
            )
        }.wrapped(in: MetricsGatewayMiddleware(factory: metrics))
        await #expect(throws: Boom.self) { _ = try await answer(app, makeEnviron("GET", "/throws")) }
        await #expect(throws: Boom.self) { _ = try await answer(app, makeEnviron("GET", "/body")) }
        let serverErrors = try metrics.expectCounter(
            "http.server.requests",
            [("http.request.method", "GET"), ("http.response.status_class", "5xx")]
        )
        #expect(serverErrors.totalValue == 1)
        #expect(
            try metrics.expectCounter(
                "http.server.errors",
                [("http.request.method", "GET"), ("error.stage", "respond")]
            ).totalValue == 1
        )
        #expect(
            try metrics.expectCounter("http.server.errors", [("http.request.method", "GET"), ("error.stage", "body")])
                .totalValue == 1
        )
        #expect(try metrics.expectMeter("http.server.active_requests", [("http.request.method", "GET")]).lastValue == 0)
    }
}
