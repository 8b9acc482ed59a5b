import FastCGI
import FastCGIServer
import Foundation
import GatewayTestHarness
import Logging
import MetricsTestKit
import ServiceLifecycle
import Testing

@testable import SwiftGateway

/// The status page, ping and the figures behind them, through a real `GatewayServer` on a
/// Unix socket: each figure moved by the traffic that should move it, and only by that.
@Suite struct StatusCountingTests {
    static let application = ClosureApplication { environ in
        switch environ.pathInfo {
        case "/hello":
            return .text("hello")
        case "/slow":
            // Sleeps until its time is up or the request is cancelled.
            try? await Task.sleep(for: .milliseconds(Int(environ.queryString) ?? 1500))
            return .text("done")
        case "/stream":
            return GatewayResponse(
                headers: [.contentType: "text/plain"],
                body: GatewayResponseBody { writer in
                    try await writer.write("a")
                    try await Task.sleep(for: .milliseconds(1500))
                    try await writer.write("b")
                }
            )
        case "/read":
            let body = try await environ.input.collect(upTo: 1 << 20)
            return .text("\(body.count)")
        default:
            return .status(.notFound)
        }
    }

    /// Runs a `GatewayServer` with `arguments` (plus a socket) and `body` against it.
    static func withServer(
        _ arguments: [String],
        logger: Logger = Logger(label: "status-tests"),
        _ body: (String) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let socket = directory.path + "/fcgi.sock"
        let options = try GatewayOptions.parse(["--socket", socket, "--shutdown-timeout", "5"] + arguments)
        let server = GatewayServer(application, options: options, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body(socket)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
    }

    /// `GET path?json` on its own connection, parsed.
    static func status(_ socket: String, path: String = "/status") async throws -> [String: Int] {
        let client = try await connect(unixPath: socket)
        let response: FastCGITestResponse
        do {
            response = try await client.perform(.get(path + "?json"))
        } catch {
            await client.close()
            throw error
        }
        // Closed before returning (not in a detached task, which a busy cooperative pool may run
        // seconds later): the next status counts no connection of this one.
        await client.close()
        #expect(response.status == 200)
        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Int]
        return try #require(object, "\(response.bodyString)")
    }

    @Test func pingAnswersPongForGetAndHeadWithoutTheApplication() async throws {
        try await Self.withServer(["--status-path", "/status", "--ping-path", "/ping"]) { socket in
            let client = try await connect(unixPath: socket)
            let ping = try await client.perform(.get("/ping", id: 1, keepConnection: true))
            #expect(ping.status == 200)
            #expect(ping.bodyString == "pong")
            #expect(ping.cgi.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(ping.cgi.header("Cache-Control") == "no-store")
            let head = try await client.perform(
                FastCGITestRequest(
                    id: 2,
                    keepConnection: true,
                    params: FastCGITestRequest.cgiParams(method: "HEAD", target: "/ping")
                )
            )
            #expect(head.status == 200)
            let post = try await client.perform(.post("/ping", body: [1], id: 3, keepConnection: true))
            #expect(post.status == 405)
            #expect(post.cgi.header("Allow") == "GET, HEAD")
            // Only the exact path: a longer one, and other paths, reach the application.
            #expect(try await client.perform(.get("/ping/x", id: 4, keepConnection: true)).status == 404)
            #expect(try await client.perform(.get("/hello", id: 5, keepConnection: true)).bodyString == "hello")
            // Debian's fastcgi_params: the path in SCRIPT_NAME, no PATH_INFO.
            let scriptName = try await client.perform(
                FastCGITestRequest(
                    id: 6,
                    keepConnection: true,
                    params: [("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", "/ping"), ("REQUEST_URI", "/ping")]
                )
            )
            #expect(scriptName.bodyString == "pong")
            await client.close()
        }
    }

    /// An Authorizer's 200 allows the request: a status path must never answer one.
    @Test func authorizerRequestsReachTheApplication() async throws {
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let socket = directory.path + "/fcgi.sock"
        let logger = Logger(label: "status-tests")
        let options = try GatewayOptions.parse(["--socket", socket, "--status-path", "/status", "--ping-path", "/ping"])
        let server = GatewayServer(
            Self.application,
            options: options,
            roles: [.responder, .authorizer],
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let client = try await connect(unixPath: socket)
            for (id, path) in [(UInt16(1), "/ping"), (2, "/status")] {
                let asked = try await client.perform(
                    FastCGITestRequest(
                        id: id,
                        role: .authorizer,
                        keepConnection: true,
                        params: FastCGITestRequest.cgiParams(
                            method: "GET",
                            target: path,
                            extra: [("FCGI_ROLE", "AUTHORIZER")]
                        )
                    )
                )
                #expect(asked.status == 404, "\(path): \(asked.bodyString)")
            }
            #expect(try await client.perform(.get("/ping", id: 3, keepConnection: true)).bodyString == "pong")
            await client.close()
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
    }

    @Test func statusPathAnswersInEachFormat() async throws {
        try await Self.withServer(["--status-path", "/status"]) { socket in
            let client = try await connect(unixPath: socket)
            defer { Task { await client.close() } }
            let text = try await client.perform(.get("/status", id: 1, keepConnection: true))
            #expect(text.cgi.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(text.cgi.header("Cache-Control") == "no-store")
            #expect(text.bodyString.contains("\nrequests:               1\n"), "\(text.bodyString)")
            let json = try await client.perform(.get("/status?json", id: 1, keepConnection: true))
            #expect(json.cgi.header("Content-Type") == "application/json")
            let prometheus = try await client.perform(.get("/status?prometheus", id: 1, keepConnection: true))
            #expect(prometheus.cgi.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            #expect(prometheus.bodyString.contains("\ngateway_requests_total 3\n"), "\(prometheus.bodyString)")
            StatusPageTests.expectValidExposition(prometheus.bodyString)
            let openMetrics = try await client.perform(.get("/status?openmetrics", id: 1, keepConnection: true))
            #expect(openMetrics.bodyString.contains("\ngateway_requests_total 4\n"))
            // No ping path configured: /ping is the application's.
            #expect(try await client.perform(.get("/ping", id: 1, keepConnection: true)).status == 404)
        }
    }

    @Test func requestsConnectionsAndInFlightFollowTheTraffic() async throws {
        try await Self.withServer(["--status-path", "/status", "--max-requests", "50"]) { socket in
            for _ in 0..<5 {
                let client = try await connect(unixPath: socket)
                #expect(try await client.perform(.get("/hello")).bodyString == "hello")
                await client.close()
            }
            // Three requests multiplexed on one kept connection, running while the status is read.
            let busy = try await connect(unixPath: socket)
            for id: UInt16 in 1...3 { try await busy.send(.get("/slow?2000", id: id, keepConnection: true)) }
            try await Task.sleep(for: .milliseconds(300))
            let during = try await Self.status(socket)
            // 5 + 3 + this status request, which counts itself (in flight too).
            #expect(during["requests"] == 9)
            #expect(during["requests_in_flight"] == 4)
            #expect(during["max_requests_in_flight"] == 4)
            #expect(during["open_connections"] == 2)
            #expect(during["accepted_connections"] == 7)
            #expect(during["max_requests"] == 50)
            #expect(during["max_connections"] == 4096)
            for id: UInt16 in 1...3 { #expect(try await busy.response(for: id).bodyString == "done") }
            await busy.close()
            // The server sees the close a moment later (later still on a loaded machine): ask
            // until it has, each asking one more request and connection.
            var after = try await Self.status(socket)
            var asked = 1
            while after["open_connections"] != 1, asked < 50 {
                try await Task.sleep(for: .milliseconds(100))
                after = try await Self.status(socket)
                asked += 1
            }
            #expect(after["requests"] == 9 + asked)
            #expect(after["requests_in_flight"] == 1)
            #expect(after["max_requests_in_flight"] == 4)
            #expect(after["open_connections"] == 1)
            #expect(after["accepted_connections"] == 7 + asked)
            #expect(after["overloaded_refusals"] == 0)
            #expect(after["body_limit_hits"] == 0)
            #expect(after["params_limit_hits"] == 0)
            #expect(after["slow_requests"] == 0, "2 s is under the default threshold of 5 s")
        }
    }

    @Test func refusalsAndLimitHitsAreCounted() async throws {
        let arguments = [
            "--status-path", "/status", "--max-requests", "1", "--max-body-bytes", "10", "--max-params", "20",
        ]
        try await Self.withServer(arguments) { socket in
            // The only slot is taken: the next request is refused FCGI_OVERLOADED.
            let busy = try await connect(unixPath: socket)
            try await busy.send(.get("/slow?1500", id: 1))
            try await Task.sleep(for: .milliseconds(300))
            let other = try await connect(unixPath: socket)
            let refused = try await other.perform(.get("/hello"))
            #expect(refused.protocolStatus == .overloaded)
            await other.close()
            #expect(try await busy.response(for: 1).bodyString == "done")
            await busy.close()
            // Its slot is free once its task has returned too, just after its END_REQUEST.
            try await Task.sleep(for: .milliseconds(300))
            // A declared body over --max-body-bytes: 413 before the application.
            let declared = try await connect(unixPath: socket)
            #expect(try await declared.perform(.post("/read", body: Array(repeating: 1, count: 100))).status == 413)
            await declared.close()
            // A body without CONTENT_LENGTH that grows past it: 413 from the application's read.
            let undeclared = try await connect(unixPath: socket)
            let response = try await undeclared.perform(
                FastCGITestRequest(
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/read"),
                    stdin: Array(repeating: 1, count: 100)
                )
            )
            #expect(response.status == 413)
            await undeclared.close()
            // Params over --max-params: the connection is closed.
            let tooMany = try await connect(unixPath: socket)
            let extra = (0..<30).map { ("HTTP_X_\($0)", "v") }
            try await tooMany.send(.get("/hello", extra: extra))
            try await tooMany.waitForClose()
            await tooMany.close()
            let status = try await Self.status(socket)
            #expect(status["overloaded_refusals"] == 1)
            #expect(status["body_limit_hits"] == 2)
            #expect(status["params_limit_hits"] == 1)
            // The slow one, the undeclared body and this status (the declared 413 is answered
            // by the server before the application, the refused and closed ones never start).
            #expect(status["requests"] == 3)
        }
    }

    @Test func slowRequestsAreCountedAndLogged() async throws {
        let records = LogRecords()
        let arguments = ["--status-path", "/status", "--slow-request-seconds", "1"]
        try await Self.withServer(arguments, logger: records.logger(label: "app")) { socket in
            let client = try await connect(unixPath: socket)
            #expect(try await client.perform(.get("/slow?1300", id: 1, keepConnection: true)).bodyString == "done")
            #expect(try await client.perform(.get("/slow?10", id: 1, keepConnection: true)).bodyString == "done")
            // A streaming body: slow because of its body, not of the call that returned it.
            #expect(try await client.perform(.get("/stream", id: 1, keepConnection: true)).bodyString == "ab")
            await client.close()
            let status = try await Self.status(socket)
            #expect(status["slow_requests"] == 2)
            #expect(status["slow_request_seconds"] == 1)
        }
        let warnings = records.all.filter { $0.level == .warning && $0.message.hasPrefix("slow request: ") }
        #expect(warnings.count == 2, "\(warnings.map(\.message))")
        #expect(warnings.first?.message.hasPrefix("slow request: GET /slow took 1.") == true, "\(warnings)")
        #expect(warnings.last?.message.hasPrefix("slow request: GET /stream took 1.") == true, "\(warnings)")
        #expect(warnings.first?.metadata["request-id"] != nil)
    }

    /// The development server (`--http`) runs the same interception and counting.
    @Test func theHTTPDevelopmentServerAnswersThemToo() async throws {
        let port = try PortAllocator.freePort()
        let logger = Logger(label: "status-tests")
        let options = try GatewayOptions.parse([
            "--http", "127.0.0.1:\(port)", "--status-path", "/status", "--ping-path", "/ping",
        ])
        let server = GatewayServer(Self.application, options: options, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            let deadline = ContinuousClock.now + .seconds(20)
            while !PortAllocator.isListening(port: port), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let ping = try await HTTPClient.send(port: port, method: "GET", target: "/ping")
            #expect(ping.status == 200)
            #expect(String(decoding: ping.body, as: UTF8.self) == "pong")
            #expect(ping.headers.first { $0.name.lowercased() == "cache-control" }?.value == "no-store")
            let hello = try await HTTPClient.send(port: port, method: "GET", target: "/hello")
            #expect(String(decoding: hello.body, as: UTF8.self) == "hello")
            let status = try await HTTPClient.send(port: port, method: "GET", target: "/status?json")
            let figures = try JSONSerialization.jsonObject(with: Data(status.body)) as? [String: Int]
            #expect(figures?["requests"] == 3, "\(String(decoding: status.body, as: UTF8.self))")
            #expect(figures?["requests_in_flight"] == 1)
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
    }

    @Test func figuresArePublishedAsSwiftMetrics() throws {
        let metrics = TestMetrics()
        let statistics = ServerStatistics()
        let options = try GatewayOptions.parse(["--max-requests", "7", "--slow-request-seconds", "3"])
        let configuration = StatusConfiguration(try GatewaySettings(options, environment: .init { _ in nil }))
        var publisher = StatisticsMetrics(statistics: statistics, configuration: configuration, factory: metrics)
        statistics.requestStarted()
        statistics.requestStarted()
        statistics.requestFinished(slow: true)
        statistics.overloadedRefusal()
        statistics.connectionAccepted(opened: true)
        publisher.publish()
        #expect(try metrics.expectCounter("gateway_requests_total").totalValue == 2)
        #expect(try metrics.expectCounter("gateway_slow_requests_total").totalValue == 1)
        #expect(try metrics.expectCounter("gateway_overloaded_refusals_total").totalValue == 1)
        #expect(try metrics.expectCounter("gateway_connections_accepted_total").totalValue == 1)
        #expect(try metrics.expectGauge("gateway_requests_in_flight").lastValue == 1)
        #expect(try metrics.expectGauge("gateway_requests_in_flight_max").lastValue == 2)
        #expect(try metrics.expectGauge("gateway_connections_open").lastValue == 1)
        #expect(try metrics.expectGauge("gateway_max_requests").lastValue == 7)
        #expect(try metrics.expectGauge("gateway_slow_request_threshold_seconds").lastValue == 3)
        // Counters move by their increase since the last copy.
        statistics.requestStarted()
        statistics.requestFinished()
        statistics.requestFinished()
        publisher.publish()
        #expect(try metrics.expectCounter("gateway_requests_total").values == [2, 1])
        #expect(try metrics.expectGauge("gateway_requests_in_flight").lastValue == 0)
        // Every figure of the page is a metric of the same name.
        let names = Set(metrics.counters.map(\.label) + metrics.recorders.map(\.label))
        #expect(names == Set(StatusPage.fields.map(\.metric)))
    }
}
