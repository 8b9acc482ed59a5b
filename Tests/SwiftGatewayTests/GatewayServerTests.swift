import FastCGI
import GatewayTestHarness
import Logging
import ServiceLifecycle
import SwiftGateway
import Testing

/// `GatewayServer` as an app uses it: its own loggers, its own `ServiceGroup` with another
/// service, a Unix socket, graceful shutdown through the group.
@Suite struct GatewayServerTests {
    enum Failure: Error { case requested }

    /// The application: logs through `environ.logger`, reports the body error it meets.
    static let application = ClosureApplication { environ in
        let logger = environ.logger
        switch environ.pathInfo {
        case "/error":
            logger.info("about to fail")
            throw Failure.requested
        case "/body":
            do {
                _ = try await environ.input.collect(upTo: 1 << 20)
                logger.info("body complete")
            } catch let error as RequestBodyIncomplete {
                logger.info(
                    "body incomplete",
                    metadata: ["reason": "\(error.reason)", "received": "\(error.received)"]
                )
                throw error
            }
            return .text("read")
        default:
            logger.info("greeting")
            return .text("hello")
        }
    }

    @Test func servesInTheAppsOwnServiceGroupWithItsLoggerAndStopsGracefully() async throws {
        let records = LogRecords()
        let logger = records.logger(label: "app")
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let socket = directory.path + "/fcgi.sock"
        let options = try GatewayOptions.parse(["--socket", socket, "--shutdown-timeout", "5"])
        let server = GatewayServer(Self.application, options: options, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server), .init(service: SidecarService(logger: logger))],
                logger: logger
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let client = try await connect(unixPath: socket)
            // The web server's id is used as it is; without one, an id is generated.
            let withID = try await client.perform(
                .get("/", id: 1, keepConnection: true, extra: [("HTTP_X_REQUEST_ID", "req-42")])
            )
            #expect(withID.bodyString == "hello")
            let failing = try await client.perform(.get("/error", id: 2, keepConnection: true))
            #expect(failing.status == 500)
            // A body that ends early: the one error type, whatever the transport.
            try await client.send(
                FastCGITestRequest(
                    id: 3,
                    keepConnection: true,
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/body", bodyLength: 10)
                ).encodedHead()
            )
            try await client.sendStdin([1, 2, 3], requestID: 3)
            try await client.sendStdinEnd(requestID: 3)
            let short = try await client.response(for: 3)
            #expect(short.status == 500)
            await client.close()
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }

        let lines = records.all
        let greeting = try #require(lines.first { $0.message == "greeting" })
        #expect(greeting.metadata["request-id"] == "req-42")
        #expect(greeting.metadata["method"] == "GET")
        #expect(greeting.metadata["path"] == "/")
        #expect(greeting.label == "app")

        let aboutToFail = try #require(lines.first { $0.message == "about to fail" })
        let generated = try #require(aboutToFail.metadata["request-id"])
        #expect(generated.utf8.count == 16 && generated.allSatisfy(\.isHexDigit), "\(generated)")
        // The server's own line about that request (the error it logged) carries the same id.
        let serverLine = try #require(lines.first { $0.message.contains("application error") })
        #expect(serverLine.metadata["request-id"] == generated)

        let incomplete = try #require(lines.first { $0.message == "body incomplete" })
        #expect(incomplete.metadata["reason"] == "\(RequestBodyIncomplete.Reason.endOfInput)")
        #expect(incomplete.metadata["received"] == "3")

        let messages = lines.map(\.message)
        #expect(messages.contains("sidecar started"))
        #expect(messages.contains("sidecar stopped"))
        #expect(messages.contains("FastCGI server stopped"))
    }

    @Test func anAbortedBodyIsTheSameErrorWithItsReason() async throws {
        let records = LogRecords()
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let socket = directory.path + "/fcgi.sock"
        let server = GatewayServer(
            Self.application,
            options: try GatewayOptions.parse(["--socket", socket]),
            logger: records.logger(label: "app")
        )
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: server)], logger: records.logger(label: "group"))
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let client = try await connect(unixPath: socket)
            try await client.send(
                FastCGITestRequest(
                    id: 1,
                    keepConnection: true,
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/body", bodyLength: 10)
                ).encodedHead()
            )
            try await client.sendStdin([1, 2], requestID: 1)
            // Wait until the application is reading, then abort.
            try await Task.sleep(for: .milliseconds(200))
            try await client.sendAbort(requestID: 1)
            _ = try await client.response(for: 1)
            let deadline = ContinuousClock.now + .seconds(10)
            while !records.all.contains(where: { $0.message == "body incomplete" }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            await client.close()
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
        let incomplete = try #require(records.all.first { $0.message == "body incomplete" })
        #expect(incomplete.metadata["reason"] == "\(RequestBodyIncomplete.Reason.aborted)")
        #expect(incomplete.metadata["received"] == "2")
    }
}
