import Foundation
import Gateway
import GatewayHTTPServer
import GatewayTestHarness
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Development HTTP server", .serialized, .timeLimit(.minutes(2)))
struct HTTPServerBehaviourTests {
    @Test("a streaming response arrives chunk by chunk before the application finishes")
    func streamingResponseArrivesInPieces() async throws {
        let firstSeen = Flag()
        let app = ClosureApplication { _ in
            GatewayResponse(
                body: GatewayResponseBody { writer in
                    try await writer.write("first\n")
                    await firstSeen.wait()
                    try await writer.write("second\n")
                }
            )
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
                let head = try await connection.receive(until: "first\n")
                #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(head.lowercased().contains("transfer-encoding: chunked\r\n"))
                #expect(!head.contains("second"))
                firstSeen.raise()
                let rest = try await connection.receive(until: "0\r\n\r\n")
                #expect(rest.contains("second\n"))
            }
        }
    }

    @Test("keep-alive: several requests on one connection, pipelined ones in order")
    func keepAlive() async throws {
        let app = ClosureApplication { environ in .text("\(environ["REMOTE_PORT"] ?? "?") \(environ.pathInfo);") }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                var ports: Set<Substring> = []
                for index in 0..<3 {
                    try await connection.send("GET /r\(index) HTTP/1.1\r\nHost: x\r\n\r\n")
                    let response = try await connection.receive(until: " /r\(index);")
                    #expect(response.hasPrefix("HTTP/1.1 200 OK"))
                    #expect(!response.lowercased().contains("connection: close"))
                    let body = try #require(response.components(separatedBy: "\r\n\r\n").last)
                    ports.insert(body.split(separator: " ")[0])
                }
                #expect(ports.count == 1)
                try await connection.send(
                    "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                let both = try await connection.receiveAll()
                let first = try #require(both.range(of: " /p1;"))
                let second = try #require(both.range(of: " /p2;"))
                #expect(first.lowerBound < second.lowerBound)
            }
        }
    }

    @Test("a thrown error becomes a 500 and the connection keeps serving")
    func thrownErrorIs500() async throws {
        let app = ClosureApplication { environ in
            if environ.pathInfo == "/fail" { throw Boom() }
            return .text("fine")
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
                let failed = try await connection.receive(until: "Internal Server Error\n")
                #expect(failed.hasPrefix("HTTP/1.1 500 Internal Server Error\r\n"))
                #expect(!failed.contains("Boom"))
                try await connection.send("GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let next = try await connection.receiveAll()
                #expect(next.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(next.hasSuffix("fine"))
            }
        }
    }

    @Test("a client that goes away mid-stream cancels the handler")
    func disconnectCancelsHandler() async throws {
        let stopped = Flag()
        let app = ClosureApplication { _ in
            GatewayResponse(
                body: GatewayResponseBody { writer in
                    defer { stopped.raise() }
                    try await writer.write(Array(repeating: UInt8(ascii: "x"), count: 1024))
                    // Only cancellation ends this wait early: no write fails to wake it up.
                    try await Task.sleep(for: .seconds(60))
                    try await writer.write("late")
                }
            )
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = try await connection.receive(until: "xxxx")
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while !stopped.isRaised, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(stopped.isRaised)
        }
    }

    @Test("HEAD gets the head without the body")
    func head() async throws {
        try await withHTTPServer(ClosureApplication { _ in .text("a body") }) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let response = try await connection.receiveAll()
                #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(response.contains("Content-Length: 6\r\n"))
                #expect(response.hasSuffix("\r\n\r\n"))
            }
        }
    }

    @Test("Expect: 100-continue is answered before the body is sent")
    func expectContinue() async throws {
        let app = ClosureApplication { environ in .text("got \(try await environ.input.collect(upTo: 100).count)") }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send(
                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
                )
                let interim = try await connection.receive(until: "\r\n\r\n")
                #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n")
                try await connection.send("hello")
                let response = try await connection.receiveAll()
                #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(response.hasSuffix("got 5"))
            }
        }
    }

    @Test("a chunked request body streams to the application without a length")
    func chunkedRequestBody() async throws {
        let app = ClosureApplication { environ in
            let body = try await environ.input.collect(upTo: 100)
            let length = environ.contentLength.map(String.init) ?? "none"
            return .text("[\(length)] \(String(decoding: body, as: UTF8.self))")
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send(
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                )
                let response = try await connection.receiveAll()
                #expect(response.hasSuffix("[none] hello world"))
            }
        }
    }

    @Test("bodies and heads over the limits are refused")
    func limits() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 1000
        limits.maxHeaderBytes = 2048
        let app = ClosureApplication { environ in .text("read \(try await environ.input.discard())") }
        try await withHTTPServer(app, limits: limits) { port in
            let declared = try await HTTPClient.send(
                port: port,
                method: "POST",
                target: "/",
                body: Array(repeating: 1, count: 1001)
            )
            #expect(declared.status == 413)
            try await withConnection(port: port) { connection in
                try await connection.send(
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n"
                        + String(repeating: "a", count: 1024) + "\r\n"
                )
                let response = try await connection.receiveAll()
                #expect(response.hasPrefix("HTTP/1.1 413 "))
            }
            let bigHeader = try await HTTPClient.send(
                port: port,
                method: "GET",
                target: "/",
                headers: [("X-Big", String(repeating: "b", count: 4096))]
            )
            #expect(bigHeader.status == 431)
            let fine = try await HTTPClient.send(
                port: port,
                method: "POST",
                target: "/",
                body: Array(repeating: 1, count: 1000)
            )
            #expect(fine.status == 200)
            #expect(String(decoding: fine.body, as: UTF8.self) == "read 1000")
        }
    }

    @Test("a client that stops sending is cut off after the request timeout")
    func requestTimeout() async throws {
        var limits = HTTPServerLimits()
        limits.requestTimeoutSeconds = 1
        try await withHTTPServer(ClosureApplication { _ in .text("x") }, limits: limits) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("GET / HTTP/1.1\r\nHost: x\r\n")
                let response = try await connection.receiveAll()
                #expect(response.isEmpty)
            }
        }
    }
}

extension HTTPServerBehaviourTests {
    @Test("HTTP/1.0: a body of unknown length is delimited by closing the connection")
    func http10StreamingClosesTheConnection() async throws {
        let app = ClosureApplication { environ in
            let version = environ.serverProtocol ?? "?"
            return GatewayResponse(
                body: GatewayResponseBody { writer in try await writer.write("streamed over \(version)") }
            )
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await connection.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let response = try await connection.receiveAll()
                #expect(response.hasPrefix("HTTP/1.0 200 OK\r\n"))
                #expect(!response.lowercased().contains("transfer-encoding"))
                #expect(response.contains("Connection: close\r\n"))
                #expect(response.hasSuffix("\r\n\r\nstreamed over HTTP/1.0"))
            }
        }
    }
}
