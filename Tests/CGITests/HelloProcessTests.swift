import Foundation
import GatewayTestHarness
import Testing

/// The built `hello` example run as a CGI process, with the environment and standard input
/// Apache's mod_cgid would give it.
@Suite("hello as a CGI process")
struct HelloProcessTests {
    let transport: CGIProcessTransport

    init() throws {
        transport = CGIProcessTransport(executable: try BuiltProducts.executable(named: "hello"))
    }

    @Test func getHello() async throws {
        let response = try await transport.perform(TestRequest("GET", "/"))
        #expect(response.status == 200)
        #expect(response.reasonPhrase == "OK")
        #expect(response[header: "Content-Type"] == "text/plain; charset=utf-8")
        #expect(response[header: "Content-Length"] == "13")
        #expect(response.text == "Hello, world!")
        #expect(response.exitStatus == 0)
        #expect(response.errors.isEmpty)
    }

    @Test func unknownPathIs404() async throws {
        let response = try await transport.perform(TestRequest("GET", "/nowhere"))
        #expect(response.status == 404)
        #expect(response.exitStatus == 0)
    }

    @Test func postBodyIsEchoedByteForByte() async throws {
        var generator = SystemRandomNumberGenerator()
        let body = (0..<(3 << 20) + 17).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let response = try await transport.perform(
            TestRequest("POST", "/echo", headers: [("Content-Type", "application/octet-stream")], body: body)
        )
        #expect(response.status == 200)
        #expect(response[header: "Content-Type"] == "application/octet-stream")
        #expect(response[header: "Content-Length"] == String(body.count))
        #expect(response.body.count == body.count)
        let same = response.body == body  // not inside #expect, which would diff 3 MiB arrays
        #expect(same)
        #expect(response.exitStatus == 0)
    }

    @Test func environIsEveryVariableAsSent() async throws {
        let request = TestRequest("GET", "/environ?a=1&b=%20x", headers: [("X-Custom-Thing", "v\"\\q")])
        let sent = transport.environment.variables(for: request)
        let response = try await transport.perform(request)
        #expect(response.status == 200)
        #expect(response[header: "Content-Type"] == "application/json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String])
        for (name, value) in sent { #expect(json[name] == value, "\(name)") }
        #expect(json.count == sent.count + 1)
        #expect(json["url_scheme"] == "http")
        #expect(json["QUERY_STRING"] == "a=1&b=%20x")
        #expect(json["HTTP_X_CUSTOM_THING"] == "v\"\\q")
        #expect(json["SCRIPT_NAME"] == "/cgi-bin/hello")
        #expect(json["PATH_INFO"] == "/environ")
    }

    @Test func variablesReachTheApplicationInEnvironmentOrder() async throws {
        let request = TestRequest("GET", "/environ", headers: [("Zeta", "1"), ("Alpha", "2")])
        let response = try await transport.perform(request)
        let names = transport.environment.variables(for: request).map(\.name)
        let text = response.text
        let positions = names.compactMap { text.range(of: "\"\($0)\": ")?.lowerBound }
        #expect(positions.count == names.count)
        #expect(positions == positions.sorted())
    }

    @Test func httpsOnMeansHTTPS() async throws {
        var environment = transport.environment
        environment.extra = [("HTTPS", "on")]
        let secure = CGIProcessTransport(executable: transport.executable, environment: environment)
        let response = try await secure.perform(TestRequest("GET", "/environ"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String])
        #expect(json["url_scheme"] == "https")
    }

    @Test func errorIs500WithALogLineOnStandardError() async throws {
        let response = try await transport.perform(TestRequest("GET", "/error"))
        #expect(response.status == 500)
        #expect(response.text == "Internal Server Error\n")
        #expect(!response.text.contains("requested"))
        #expect(response.exitStatus == 0)
        #expect(response.errors.hasPrefix("swift-gateway: application error while answering, GET /cgi-bin/hello/error"))
        #expect(response.errors.hasSuffix("\n"))
    }

    @Test func bodyIsCutAtContentLength() async throws {
        var variables = transport.environment.variables(for: TestRequest("POST", "/echo"))
        variables.append(("CONTENT_LENGTH", "10"))
        let result = try await transport.run(environment: variables, input: .bytes(Array(repeating: 65, count: 100)))
        let response = try ResponseParser.parseCGI(result.standardOutput)
        #expect(result.status == 0)
        #expect(response.body == Array(repeating: 65, count: 10))
    }

    @Test func noContentLengthMeansNoBody() async throws {
        let variables = transport.environment.variables(for: TestRequest("POST", "/echo"))
        #expect(!variables.contains { $0.name == "CONTENT_LENGTH" })
        let result = try await transport.run(environment: variables, input: .bytes(Array(repeating: 65, count: 100)))
        let response = try ResponseParser.parseCGI(result.standardOutput)
        #expect(response.status == 200)
        #expect(response.body.isEmpty)
    }

    @Test func bodyEndingBeforeContentLengthCutsTheResponse() async throws {
        var variables = transport.environment.variables(for: TestRequest("POST", "/echo"))
        variables.append(("CONTENT_LENGTH", "10"))
        let result = try await transport.run(environment: variables, input: .bytes(Array("abcd".utf8)))
        let response = try ResponseParser.parseCGI(result.standardOutput)
        #expect(result.status == 1)
        #expect(response.text == "abcd")
        #expect(result.errorText.contains("request body incomplete: the input ended after 4 of 10 bytes"))
    }

    @Test func startedFromATerminalPrintsHowToRunIt() async throws {
        let terminal = try PseudoTerminal()
        let result = try await transport.run(
            environment: [("PATH", "/usr/bin:/bin")],
            input: .descriptor(terminal.secondary)
        )
        #expect(result.status == 2)
        #expect(result.standardOutput.isEmpty)
        #expect(result.errorText.contains("CGI"))
        #expect(result.errorText.contains("FastCGI"))
        #expect(result.errorText.contains("spawn-fcgi"))
    }

    @Test func withoutATerminalAndWithoutREQUEST_METHODItServesAGET() async throws {
        // Not started by hand (standard input is not a terminal): CGI's defaults apply.
        let result = try await transport.run(environment: [("PATH_INFO", "/")], input: .null)
        #expect(result.status == 0)
        #expect(try ResponseParser.parseCGI(result.standardOutput).text == "Hello, world!")
    }
}
