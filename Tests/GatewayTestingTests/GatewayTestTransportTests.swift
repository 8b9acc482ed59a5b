import GatewayTesting
import SwiftGateway
import Testing
import testing_example

/// The public testing API as an app's tests use it (this target sees neither the harness nor
/// the servers): one application, one test body, each of the four transports. The `.cgi`
/// transport runs the `testing-example` executable, which serves the same ``ExampleApplication``.
@Suite struct GatewayTestTransportTests {
    static let transports: [GatewayTestTransport] = [.inProcess, .fastCGI, .cgi(product: "testing-example"), .nginx]

    @Test(arguments: transports)
    func greeting(over transport: GatewayTestTransport) async throws {
        try await ExampleApplication().test(transport) { client in
            let response = try await client.execute(uri: "/", method: .get)
            #expect(response.status == .ok)
            #expect(response.status.reasonPhrase == "OK")
            #expect(response.headers[.contentType] == "text/plain; charset=utf-8")
            #expect(response.bodyString == "Hello, world!")
            #expect(response.body == Array("Hello, world!".utf8))
        }
    }

    @Test(arguments: transports)
    func statusAndHeadersBothWays(over transport: GatewayTestTransport) async throws {
        try await ExampleApplication().test(transport) { client in
            let sent = "value, with: punctuation"
            let response = try await client.execute(
                uri: "/created",
                method: .post,
                headers: [HTTPField.Name("X-Echo")!: sent]
            )
            #expect(response.status == .created)
            #expect(response.headers[.location] == "/things/1")
            #expect(response.headers[HTTPField.Name("X-Example")!] == "created")
            #expect(response.headers[HTTPField.Name("X-Echoed")!] == sent, "a request header reached the app")
            #expect(response.bodyString == "made\n")
            #expect(response.headers[HTTPField.Name("Status")!] == nil, "CGI's Status is the status, not a header")
        }
    }

    @Test(arguments: transports)
    func aStreamedBodyArrivesWhole(over transport: GatewayTestTransport) async throws {
        try await ExampleApplication().test(transport) { client in
            let response = try await client.execute(uri: "/stream?n=300")
            #expect(response.status == .ok)
            let expected = (0..<300).map(ExampleApplication.streamLine).joined()
            #expect(response.body.count == 300 * 1024)
            #expect(response.bodyString == expected)
        }
    }

    @Test(arguments: transports)
    func theRequestBodyReachesTheApp(over transport: GatewayTestTransport) async throws {
        try await ExampleApplication().test(transport) { client in
            let body = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
            let echoed = try await client.execute(
                uri: "/echo",
                method: .put,
                headers: [.contentType: "application/octet-stream"],
                body: body
            )
            #expect(echoed.status == .ok)
            #expect(echoed.headers[HTTPField.Name("X-Method")!] == "PUT")
            #expect(echoed.headers[.contentType] == "application/octet-stream")
            #expect(echoed.body.count == body.count)
            #expect(echoed.body == body)

            let text = try await client.execute(uri: "/echo", method: .post, body: "a short text body")
            #expect(text.bodyString == "a short text body")
            let empty = try await client.execute(uri: "/echo", method: .post)
            #expect(empty.status == .ok)
            #expect(empty.body.isEmpty)
        }
    }

    @Test(arguments: transports)
    func anErrorIsA500AndTheNextRequestIsServed(over transport: GatewayTestTransport) async throws {
        try await ExampleApplication().test(transport) { client in
            let failed = try await client.execute(uri: "/error")
            #expect(failed.status == .internalServerError)
            #expect(!failed.bodyString.contains("requested"), "the error's description leaked to the client")
            let missing = try await client.execute(uri: "/nowhere")
            #expect(missing.status == .notFound)
            #expect(missing.bodyString == "Not Found\n")
            let after = try await client.execute(uri: "/")
            #expect(after.bodyString == "Hello, world!")
        }
    }

    /// An app that answers while it reads (each chunk of the body back as it arrives) needs a
    /// client that sends the body while it reads the response, as a web server's event loop does;
    /// over FastCGI a client that sent first would stall once both sockets' buffers are full.
    @Test(arguments: [GatewayTestTransport.inProcess, .fastCGI])
    func anEchoThatAnswersWhileItReadsDoesNotStall(over transport: GatewayTestTransport) async throws {
        let streamingEcho = ClosureApplication { environ in
            GatewayResponse(
                headers: [.contentType: "application/octet-stream"],
                body: GatewayResponseBody(contentLength: environ.contentLength) { writer in
                    for try await chunk in environ.input { try await writer.write(chunk) }
                }
            )
        }
        try await streamingEcho.test(transport) { client in
            let body = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 >> 3) }
            let echoed = try await client.execute(uri: "/", method: .post, body: body)
            #expect(echoed.status == .ok)
            #expect(echoed.body == body)
        }
    }

    @Test func theClientKnowsItsTransportAndTheBodysValueIsReturned() async throws {
        let name = try await ExampleApplication().test(.fastCGI) { client in "\(client.transport)" }
        #expect(name == "fastcgi")
        #expect(GatewayTestTransport.transportsDescribed == ["in-process", "fastcgi", "cgi(testing-example)", "nginx"])
    }

    @Test func aMissingCGIExecutableIsAClearError() async throws {
        let transport = GatewayTestTransport.cgi(executable: "/nonexistent/app")
        #expect(!transport.isAvailable)
        let error = await #expect(throws: GatewayTestError.self) {
            try await ExampleApplication().test(transport) { _ in }
        }
        #expect(error?.description.contains("/nonexistent/app") == true)
        #expect(!GatewayTestTransport.cgi(product: "no-such-product").isAvailable)
        #expect(GatewayTestTransport.cgi(product: "testing-example").isAvailable)
    }

    @Test func aURIThatIsNotAPathIsRefusedBeforeItIsSent() async throws {
        try await ExampleApplication().test(.inProcess) { client in
            await #expect(throws: GatewayTestError.self) { try await client.execute(uri: "no-slash") }
            await #expect(throws: GatewayTestError.self) { try await client.execute(uri: "/a b") }
        }
    }
}

extension GatewayTestTransport {
    static var transportsDescribed: [String] { GatewayTestTransportTests.transports.map(\.description) }
}
