import Foundation
import GatewayTestHarness
import Testing

/// The README's app as a process: its own flag beside `GatewayOptions`, its own JSON logging
/// bootstrapped before `GatewayServer` starts, a second service in its `ServiceGroup`.
@Suite struct ReadmeAppTests {
    @Test func servesWithItsOwnFlagAndJSONLogsThenStopsBothServicesOnSIGTERM() async throws {
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let app = try await FastCGIAppProcess.start(
            try BuiltProducts.executable(named: "readme-example"),
            socketPath: directory.path + "/fcgi.sock",
            extraArguments: ["--greeting", "Howdy"],
            logFile: directory.path + "/app.log"
        )
        defer { Task { await app.cleanUp() } }
        let client = try await FastCGITestClient.connect(unixPath: app.socketPath)
        let response = try await client.perform(
            .get("/", extra: [("HTTP_HOST", "example.org"), ("HTTP_X_REQUEST_ID", "readme-1")])
        )
        #expect(response.bodyString == "Howdy from example.org!")
        #expect(await app.stop(timeout: .seconds(20)) == .exited(0), "\(app.log)")

        let lines = app.log.split(separator: "\n").map(String.init)
        let records = lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String]
        }
        #expect(records.count == lines.count, "every line is a JSON object:\n\(app.log)")
        let greeting = try #require(records.first { $0["message"] == "greeting" }, "\(app.log)")
        #expect(greeting["request-id"] == "readme-1")
        #expect(greeting["method"] == "GET")
        #expect(greeting["path"] == "/")
        let messages = records.compactMap { $0["message"] }
        #expect(messages.contains("heartbeat started"))
        #expect(messages.contains("heartbeat stopped"))
        #expect(messages.contains("FastCGI server stopped"))
    }

    /// The same binary with `--http`: the development server answers the same routes over
    /// plain HTTP, logs its URL, and stops on SIGTERM with both services.
    @Test func servesOverHTTPForDevelopmentWithTheSameRoutes() async throws {
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let port = try PortAllocator.freePort()
        let app = try ProcessRunner.start(
            try BuiltProducts.executable(named: "readme-example"),
            arguments: ["--http", "127.0.0.1:\(port)", "--greeting", "Howdy"],
            logFile: directory.path + "/app.log"
        )
        defer { Task { await app.stop() } }
        let listening = await poll(timeout: .seconds(30), interval: .milliseconds(20)) {
            PortAllocator.isListening(port: port)
        }
        #expect(listening, "\(app.logTail)")
        let greeting = try await HTTPClient.send(
            port: port,
            method: "GET",
            target: "/",
            headers: [("Host", "dev.example")]
        )
        #expect(greeting.status == 200)
        #expect(greeting.text == "Howdy from dev.example!")
        let echo = try await HTTPClient.send(
            port: port,
            method: "POST",
            target: "/echo",
            headers: [("Content-Type", "text/csv")],
            body: Array("a,b\n1,2\n".utf8)
        )
        #expect(echo.text == "a,b\n1,2\n")
        #expect(echo.headers.contains { $0.name.lowercased() == "content-type" && $0.value == "text/csv" })
        #expect(await app.stop(timeout: .seconds(20)) == .exited(0), "\(app.logTail)")
        #expect(app.logTail.contains("http://127.0.0.1:\(port)"), "\(app.logTail)")
        #expect(app.logTail.contains("development only"), "\(app.logTail)")
        #expect(app.logTail.contains("heartbeat stopped"), "\(app.logTail)")
    }

    /// The same binary as a CGI program: one response, then the whole group ends, exit 0;
    /// arguments (Apache's from a query string) are not read as flags.
    @Test func answersOneCGIRequestInItsServiceGroupAndExitsZero() async throws {
        let result = try await ProcessRunner.run(
            try BuiltProducts.executable(named: "readme-example"),
            arguments: ["--greeting", "--bogus"],
            environment: ProcessRunner.inheritedEnvironment(overriding: [
                "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "cgi.example", "SERVER_PORT": "80",
                "HTTP_X_REQUEST_ID": "cgi-1",
            ]),
            timeout: .seconds(30)
        )
        #expect(result.status == 0, "\(result.errorText)")
        let response = try ResponseParser.parseCGI(result.standardOutput)
        #expect(response.text == "Hello from cgi.example!")
        let records = result.errorText.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String]
        }
        #expect(records.contains { $0["message"] == "greeting" && $0["request-id"] == "cgi-1" }, "\(result.errorText)")
        #expect(records.contains { $0["message"] == "heartbeat stopped" }, "\(result.errorText)")
    }
}
