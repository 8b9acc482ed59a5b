import Foundation
import Gateway
import GatewayHTTPServer
import GatewayTestHarness
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Development HTTP server: timeouts and shutdown", .serialized, .timeLimit(.minutes(2)))
struct HTTPServerLifecycleTests {
    @Test("a head trickling in byte by byte is cut off after the request timeout")
    func slowHeadIsCutOff() async throws {
        var limits = HTTPServerLimits()
        limits.requestTimeoutSeconds = 1
        try await withHTTPServer(ClosureApplication { _ in .text("x") }, limits: limits) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("GET / HTTP/1.1\r\nX-Slow: ")
                let outbound = connection.outbound
                // A byte every 200 ms for 8 s: each gap is well under the timeout.
                let trickle = Task {
                    for _ in 0..<40 {
                        try? await outbound.write(ByteBuffer(string: "X"))
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
                defer { trickle.cancel() }
                let start = ContinuousClock.now
                // The server closes with the trickled bytes unread, so the end may come as a reset.
                let response = (try? await connection.receiveAll()) ?? ""
                #expect(response.isEmpty)
                #expect(ContinuousClock.now - start < .seconds(5))
            }
        }
    }

    @Test("logs its URL, and graceful shutdown lets the request in flight finish")
    func gracefulShutdown() async throws {
        let log = RecordedLog()
        let logger = Logger(label: "test-http-server") { _ in RecordingLogHandler(log: log) }
        let started = Flag()
        let release = Flag()
        let app = ClosureApplication { _ in
            GatewayResponse(
                body: GatewayResponseBody { writer in
                    try await writer.write("begun;")
                    started.raise()
                    await release.wait()
                    try await writer.write("finished")
                }
            )
        }
        let server = GatewayHTTPServer(application: app, address: try HTTPServerAddress(parsing: ":0"), logger: logger)
        let group = ServiceGroup(services: [server], logger: logger)
        let running = Task { try await group.run() }
        let port = try #require(try await server.localAddress.port)
        #expect(
            log.contains(
                "Serving http://127.0.0.1:\(port) — for development only; deploy behind nginx or Apache over FastCGI"
            )
        )
        try await withConnection(port: port) { connection in
            try await connection.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await connection.receive(until: "begun;")
            await started.wait()
            await group.triggerGracefulShutdown()
            // New connections are refused once shutdown began.
            let deadline = ContinuousClock.now + .seconds(20)
            while PortAllocator.isListening(port: port), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(!PortAllocator.isListening(port: port))
            release.raise()
            let rest = try await connection.receiveAll()
            #expect(rest.contains("finished"))
            #expect(rest.hasSuffix("0\r\n\r\n"))
        }
        try await running.value
        #expect(log.contains("HTTP server stopped"))
    }
}

extension HTTPServerLifecycleTests {
    @Test("a body that stops arriving fails in the application after the request timeout")
    func stalledBodyTimesOut() async throws {
        var limits = HTTPServerLimits()
        limits.requestTimeoutSeconds = 1
        let failure = Mutex<String?>(nil)
        let app = ClosureApplication { environ in
            do {
                _ = try await environ.input.collect(upTo: 1000)
            } catch {
                failure.withLock { $0 = "\(error)" }
                throw error
            }
            return .text("complete")
        }
        try await withHTTPServer(app, limits: limits) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
                let response = try await connection.receiveAll()
                #expect(!response.contains("complete"))
            }
        }
        #expect(failure.withLock { $0 } == HTTPRequestInterruption.timedOut.description)
    }

    @Test("a body left unread after the response is drained, and the connection serves the next request")
    func unreadBodyIsDrained() async throws {
        let app = ClosureApplication { environ in .text("answered \(environ.pathInfo);") }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
                _ = try await connection.receive(until: "answered /first;")
                try await connection.send(String(repeating: "z", count: 100_000))
                try await connection.send("GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let next = try await connection.receiveAll()
                #expect(next.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(next.hasSuffix("answered /second;"))
            }
        }
    }
}

extension HTTPServerLifecycleTests {
    @Test("a malformed chunked body fails in the application and closes the connection")
    func malformedChunkedBody() async throws {
        let failure = Mutex<String?>(nil)
        let app = ClosureApplication { environ in
            do {
                _ = try await environ.input.collect(upTo: 1000)
            } catch {
                failure.withLock { $0 = "\(error)" }
                throw error
            }
            return .text("complete")
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send(
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"
                )
                let response = try await connection.receiveAll()
                #expect(response.hasPrefix("HTTP/1.1 500 "))
                #expect(response.contains("Connection: close\r\n"))
            }
        }
        #expect(failure.withLock { $0 } == HTTPRequestInterruption.malformedBody.description)
    }
}
