import FastCGI
import FastCGIServer
import Gateway
import GatewayTestHarness
import NIOCore
import Testing

/// A small application for in-process servers: `/slow` sleeps 500 ms, `/echo` echoes, the rest says hello.
struct LimitsTestApp: GatewayApplication {
    nonisolated(nonsending) func respond(to environ: Environ) async throws -> GatewayResponse {
        switch environ.path {
        case "/slow":
            try await Task.sleep(for: .milliseconds(500))
            return .text("done")
        case "/echo":
            return GatewayResponse(body: GatewayResponseBody(bytes: try await environ.input.collect(upTo: 1 << 24)))
        default:
            return .text("hello")
        }
    }
}

/// Runs `body` against an in-process server with `limits` and `roles`, then stops it.
func withServer<R>(
    _ limits: ServerLimits = ServerLimits(),
    roles: Set<Role> = [.responder],
    _ body: (FastCGIInProcessServer) async throws -> R
) async throws -> R {
    let server = try await FastCGIInProcessServer.start(LimitsTestApp(), limits: limits, roles: roles)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        Issue.record("server log:\n\(server.log.entries.suffix(30).joined(separator: "\n"))")
        await server.stop()
        throw error
    }
}

extension FastCGIInProcessServer {
    func connect() async throws -> FastCGITestClient {
        try await FastCGITestClient.connect(unixPath: socketPath)
    }

    func expectServesFreshConnection(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let client = try await connect()
        let response = try await client.perform(.get("/hello"))
        #expect(response.bodyString == "hello", sourceLocation: sourceLocation)
        await client.close()
    }
}

extension FastCGIServerTests {
    /// Every configurable bound of `ServerLimits`, enforced.
    @Suite struct Limits {
        @Test func paramsBytesOverTheLimitCloseTheConnection() async throws {
            var limits = ServerLimits()
            limits.maxParamsBytes = 2000
            try await withServer(limits) { server in
                let client = try await server.connect()
                let response = try await client.perform(
                    .get("/hello", keepConnection: true, extra: [("HTTP_X_A", String(repeating: "a", count: 1000))])
                )
                #expect(response.bodyString == "hello")
                try await client.send(
                    FastCGITestRequest.get("/hello", extra: [("HTTP_X_A", String(repeating: "a", count: 3000))])
                )
                let leftover = try await client.waitForClose(timeout: .seconds(5))
                #expect(leftover.isEmpty)
                #expect(server.log.contains("params size limit"), "\(server.log.entries)")
                try await server.expectServesFreshConnection()
            }
        }

        @Test func unfinishedParamsOfMultiplexedRequestsShareOneBudget() async throws {
            var limits = ServerLimits()
            limits.maxParamsBytesPerConnection = 4000
            try await withServer(limits) { server in
                // Five requests, each well under maxParamsBytes, none finishing its params.
                let client = try await server.connect()
                var records = Records()
                for id in UInt16(1)...5 {
                    records.begin(id: id, keepConnection: true)
                    records.raw(
                        type: RecordType.params.rawValue,
                        id: id,
                        pairBytes("HTTP_X_A", String(repeating: "a", count: 1000))
                    )
                }
                try await client.send(records.buffer)
                #expect(try await client.waitForClose(timeout: .seconds(5)).isEmpty)
                #expect(server.log.contains("per-connection limit"), "\(server.log.entries)")
                try await server.expectServesFreshConnection()
            }
        }

        @Test func paramPairsOverTheLimitCloseTheConnection() async throws {
            var limits = ServerLimits()
            limits.maxParamsPairs = 50
            try await withServer(limits) { server in
                let client = try await server.connect()
                let extra = (0..<60).map { ("HTTP_X_\($0)", "v") }
                try await client.send(FastCGITestRequest.get("/hello", extra: extra))
                #expect(try await client.waitForClose(timeout: .seconds(5)).isEmpty)
                #expect(server.log.contains("params count limit"), "\(server.log.entries)")
                try await server.expectServesFreshConnection()
            }
        }

        @Test func requestsPerConnectionOverTheLimitAreOverloaded() async throws {
            var limits = ServerLimits()
            limits.maxRequestsPerConnection = 4
            try await withServer(limits) { server in
                let client = try await server.connect()
                var records = Records()
                for id: UInt16 in 1...6 { records.request(.get("/slow", id: id, keepConnection: true)) }
                try await client.send(records.buffer)
                for id: UInt16 in 5...6 {
                    let refused = try await client.response(for: id)
                    #expect(refused.protocolStatus == .overloaded)
                    #expect(refused.stdout.isEmpty)
                }
                for id: UInt16 in 1...4 {
                    let response = try await client.response(for: id)
                    response.expectCompleted()
                    #expect(response.bodyString == "done")
                }
                let after = try await client.perform(.get("/hello", id: 5, keepConnection: true))
                #expect(after.bodyString == "hello")
                await client.close()
            }
        }

        @Test func connectionsOverTheLimitAreClosedWithALogLine() async throws {
            var limits = ServerLimits()
            limits.maxConnections = 3
            try await withServer(limits) { server in
                var clients: [FastCGITestClient] = []
                for _ in 0..<3 {
                    let client = try await server.connect()
                    let response = try await client.perform(.get("/hello", keepConnection: true))
                    #expect(response.bodyString == "hello")
                    clients.append(client)
                }
                let extra = try await server.connect()
                try? await extra.send(FastCGITestRequest.get("/hello"))
                try await extra.waitForClose(timeout: .seconds(5))
                #expect(server.log.contains("connection limit reached"), "\(server.log.entries)")
                await clients[0].close()
                // Once one closed, a new connection is served again.
                var served = false
                for _ in 0..<50 where !served {
                    let client = try await server.connect()
                    served = (try? await client.perform(.get("/hello")))?.bodyString == "hello"
                    await client.close()
                    if !served { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(served)
                for client in clients { await client.close() }
            }
        }

        @Test func totalRequestsInFlightOverTheLimitAreOverloaded() async throws {
            var limits = ServerLimits()
            limits.maxRequests = 3
            try await withServer(limits) { server in
                let first = try await server.connect()
                let second = try await server.connect()
                var records = Records()
                records.request(.get("/slow", id: 1, keepConnection: true))
                records.request(.get("/slow", id: 2, keepConnection: true))
                try await first.send(records.buffer)
                try await Task.sleep(for: .milliseconds(50))
                try await second.send(FastCGITestRequest.get("/slow", id: 1, keepConnection: true))
                try await second.send(FastCGITestRequest.get("/slow", id: 2, keepConnection: true))
                let refused = try await second.response(for: 2)
                #expect(refused.protocolStatus == .overloaded)
                #expect(try await second.response(for: 1).bodyString == "done")
                #expect(try await first.response(for: 1).bodyString == "done")
                #expect(try await first.response(for: 2).bodyString == "done")
                // Slots are released: all three can run again.
                let again = try await second.perform(.get("/hello", id: 2, keepConnection: true))
                #expect(again.bodyString == "hello")
                await first.close()
                await second.close()
            }
        }

        @Test func bodyOverTheLimitIs413() async throws {
            var limits = ServerLimits()
            limits.maxBodyBytes = 1000
            try await withServer(limits) { server in
                let client = try await server.connect()
                let small = try await client.perform(
                    .post("/echo", body: [UInt8](repeating: 1, count: 1000), keepConnection: true)
                )
                #expect(small.status == 200 && small.body.count == 1000)
                let big = try await client.perform(
                    .post("/echo", body: [UInt8](repeating: 1, count: 5000), id: 2, keepConnection: true)
                )
                big.expectCompleted()
                #expect(big.status == 413)
                let after = try await client.perform(.get("/hello", id: 3, keepConnection: true))
                #expect(after.bodyString == "hello")
                await client.close()
            }
        }

        @Test func aBodyWithoutContentLengthStopsAtTheLimitWithA413() async throws {
            // nginx with `fastcgi_request_buffering off` streams a chunked upload without a
            // CONTENT_LENGTH: the limit is then counted on the STDIN bytes themselves.
            var limits = ServerLimits()
            limits.maxBodyBytes = 1000
            try await withServer(limits) { server in
                let client = try await server.connect()
                let params = FastCGITestRequest.cgiParams(method: "POST", target: "/echo")
                let fits = FastCGITestRequest(
                    id: 1,
                    keepConnection: true,
                    params: params,
                    stdin: .init(repeating: 1, count: 1000)
                )
                let small = try await client.perform(fits)
                #expect(small.status == 200 && small.body.count == 1000)
                let over = FastCGITestRequest(
                    id: 2,
                    keepConnection: true,
                    params: params,
                    stdin: .init(repeating: 1, count: 300_000),
                    stdinRecordSize: 4096
                )
                let big = try await client.perform(over)
                big.expectCompleted()
                #expect(big.status == 413)
                #expect(big.bodyString.hasSuffix("Request body too large\n"), "\(big.bodyString)")
                #expect(server.log.contains("body over the limit of 1000 bytes"), "\(server.log.entries)")
                // The rest of that body was dropped, not buffered: the connection goes on.
                let after = try await client.perform(.get("/hello", id: 3, keepConnection: true))
                #expect(after.bodyString == "hello")
                await client.close()
            }
        }

        @Test func requestsWhoseParamsNeverEndDoNotHoldAConnectionPastTheIdleTimeout() async throws {
            try await withProbe(["--idle-timeout", "1"]) { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                records.begin(id: 1, keepConnection: true)
                records.raw(type: RecordType.params.rawValue, id: 1, pairBytes("REQUEST_METHOD", "GET"))
                try socket.write(records.bytes)
                let started = ContinuousClock.now
                let (bytes, eof) = socket.read(timeoutMilliseconds: 5000)
                #expect(eof, "the connection stayed open")
                #expect(bytes.isEmpty, "\(splitRecords(bytes))")
                #expect(ContinuousClock.now - started < .seconds(4))
                #expect(probe.log.contains("idle with their params unfinished"), "\(probe.log)")
            }
        }

        @Test func idleTimeoutClosesIdleConnections() async throws {
            try await withProbe(["--idle-timeout", "1"]) { probe in
                let idle = try await probe.connect()
                let used = try await probe.connect()
                let response = try await used.perform(.get("/hello", keepConnection: true))
                #expect(response.bodyString == "Hello, world!")
                // A request in flight for longer than the timeout is not cut off.
                let busy = try await probe.connect()
                let slow = try await busy.perform(.get("/slow?ms=1500", keepConnection: true))
                #expect(slow.bodyString == "done")
                let elapsed = try await measure {
                    try await idle.waitForClose(timeout: .seconds(4))
                    try await used.waitForClose(timeout: .seconds(4))
                }
                #expect(elapsed < .seconds(3))
                try await busy.waitForClose(timeout: .seconds(4))
            }
        }
    }
}
