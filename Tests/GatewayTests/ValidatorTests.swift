import Gateway
import GatewayTestHarness
import HTTPTypes
import Synchronization
import Testing

/// Collects violations reported by a GatewayValidator.
final class Violations: Sendable {
    private let found = Mutex<[GatewayValidator.Violation]>([])
    var all: [GatewayValidator.Violation] { found.withLock { $0 } }
    var messages: [String] { all.map(\.message) }
    func handler() -> GatewayValidator.Handler { { violation, _ in self.found.withLock { $0.append(violation) } } }
}

let validEnviron: KeyValuePairs<String, String> = [
    "REQUEST_METHOD": "GET", "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
    "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
]

@Suite("GatewayValidator")
struct ValidatorTests {
    func run(
        _ response: GatewayResponse,
        strict: Bool = false,
        environ variables: KeyValuePairs<String, String> = validEnviron
    ) async -> (Violations, ResponseOutcome, MemoryOutput) {
        let violations = Violations()
        let app = ClosureApplication { _ in response }.wrapped(
            in: GatewayValidator(strict: strict, handler: violations.handler())
        )
        let (outcome, output) = await drive(app, environ: environ(variables))
        return (violations, outcome, output)
    }

    @Test func aValidExchangeReportsNothing() async {
        let (violations, outcome, _) = await run(.text("ok"))
        #expect(violations.all.isEmpty)
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        let streamed = GatewayResponse(
            headers: [.contentType: "text/plain"],
            body: GatewayResponseBody(contentLength: 4) { writer in
                try await writer.write("ab")
                try await writer.write("cd")
            }
        )
        #expect(await run(streamed).0.all.isEmpty)
        #expect(await run(.status(.noContent)).0.all.isEmpty)
        #expect(await run(.status(.notFound)).0.all.isEmpty)
    }

    @Test func requiredVariables() {
        let messages = GatewayValidator.check(environ([:])).map(\.message)
        #expect(messages.contains("REQUEST_METHOD is missing"))
        #expect(messages.contains("SERVER_NAME is missing"))
        #expect(messages.contains("SERVER_PORT is missing"))
        #expect(messages.contains("SERVER_PROTOCOL is missing"))
        #expect(GatewayValidator.check(environ(validEnviron)).isEmpty)
        #expect(GatewayValidator.check(environ(validEnviron)).allSatisfy { $0.side == .server })
    }

    func violations(adding name: String, _ value: String) -> [String] {
        var pairs = validEnviron.filter { $0.key != name }.map { ($0.key, $0.value) }
        pairs.append((name, value))
        let environ = Environ(
            variables: CGIVariables(pairs),
            multithread: false,
            multiprocess: true,
            runOnce: true
        )
        return GatewayValidator.check(environ).map(\.message)
    }

    @Test func methodAndPort() {
        #expect(violations(adding: "REQUEST_METHOD", "GE T") == ["REQUEST_METHOD \"GE T\" is not an HTTP method token"])
        #expect(violations(adding: "SERVER_PORT", "http") == ["SERVER_PORT \"http\" is not a decimal number"])
    }

    @Test func contentLengthEmptyOrDigits() {
        #expect(violations(adding: "CONTENT_LENGTH", "").isEmpty)
        #expect(violations(adding: "CONTENT_LENGTH", "12").isEmpty)
        #expect(
            violations(adding: "CONTENT_LENGTH", "-3") == [
                "CONTENT_LENGTH \"-3\" is neither empty nor a decimal number"
            ]
        )
    }

    @Test func scriptNameAndPathInfoArePaths() {
        #expect(violations(adding: "SCRIPT_NAME", "/app").isEmpty)
        #expect(violations(adding: "PATH_INFO", "").isEmpty)
        #expect(
            violations(adding: "SCRIPT_NAME", "app") == ["SCRIPT_NAME \"app\" is neither empty nor starts with \"/\""]
        )
        #expect(violations(adding: "PATH_INFO", "x/y") == ["PATH_INFO \"x/y\" is neither empty nor starts with \"/\""])
    }

    @Test func urlSchemeIsHTTPOrHTTPS() {
        #expect(violations(adding: "REQUEST_SCHEME", "https").isEmpty)
        #expect(violations(adding: "HTTPS", "on").isEmpty)
        #expect(
            violations(adding: "REQUEST_SCHEME", "gopher") == [
                "the URL scheme is \"gopher\", not http or https (REQUEST_SCHEME/HTTPS)"
            ]
        )
    }

    @Test func duplicatedContentHeadersAreRemovedBeforeTheValidatorSeesThem() {
        // Environ drops HTTP_CONTENT_TYPE/LENGTH, so a server cannot hand them to an application.
        #expect(violations(adding: "HTTP_CONTENT_LENGTH", "5").isEmpty)
        #expect(violations(adding: "HTTP_CONTENT_TYPE", "a/b").isEmpty)
    }

    @Test func emptyNamesAndGatewayKeys() {
        #expect(violations(adding: "", "x") == ["variable 7 has an empty name"])
        var environ = environ(validEnviron)
        environ.multithread = true
        environ.version.major = 2
        #expect(
            GatewayValidator.check(environ).map(\.message) == [
                "version is 2.0, this library implements 1.0",
                "runOnce and multithread are both true: a process that serves one request runs no other",
            ]
        )
    }

    @Test func environViolationsGoToTheErrorStreamByDefault() async {
        let errors = ErrorCollector()
        let app = ClosureApplication { _ in .text("ok") }.wrapped(in: GatewayValidator())
        let (outcome, _) = await drive(app, environ: environ(["REQUEST_METHOD": "GET"], errors: errors.stream))
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(errors.messages.count == 3)
        #expect(errors.messages.first == "swift-gateway validator: server: SERVER_NAME is missing\n")
    }

    @Test func strictEnvironViolationsStopTheRequestWithA500() async {
        let violations = Violations()
        let called = Mutex(false)
        let app = ClosureApplication { _ in
            called.withLock { $0 = true }
            return .text("ok")
        }
        .wrapped(in: GatewayValidator(strict: true, handler: violations.handler()))
        let (outcome, output) = await drive(app, environ: environ(["REQUEST_METHOD": "GET"]))
        guard case .applicationFailed(headSent: false) = outcome else { Issue.record("\(outcome)"); return }
        #expect(!called.withLock { $0 })
        #expect(text(output.bytes).hasPrefix("Status: 500"))
        #expect(violations.all.count == 3)
    }

    @Test func statusRange() async {
        let (violations, _, _) = await run(GatewayResponse(status: HTTPResponse.Status(code: 99)))
        #expect(violations.messages == ["status 99 is outside 100…599"])
        #expect(
            await run(GatewayResponse(status: HTTPResponse.Status(code: 600))).0.messages == [
                "status 600 is outside 100…599"
            ]
        )
        #expect(violations.all.allSatisfy { $0.side == .application })
    }

    @Test func hopByHopHeaders() async {
        var headers: HTTPFields = [.contentType: "text/plain"]
        headers[.connection] = "close"
        headers[.transferEncoding] = "chunked"
        let (violations, _, _) = await run(GatewayResponse(headers: headers, body: GatewayResponseBody(string: "x")))
        #expect(
            violations.messages == [
                "header Connection is hop-by-hop (or CGI's own); the web server owns it and it will be dropped",
                "header Transfer-Encoding is hop-by-hop (or CGI's own); the web server owns it and it will be dropped",
            ]
        )
    }

    @Test func contentLengthMustMatchAnInMemoryBody() async {
        let response = GatewayResponse(
            headers: [.contentType: "text/plain", .contentLength: "10"],
            body: GatewayResponseBody(string: "short")
        )
        #expect(await run(response).0.messages == ["Content-Length header says 10 but the body's contentLength is 5"])
        let notANumber = GatewayResponse(headers: [.contentType: "a/b", .contentLength: "ten"], body: .empty)
        #expect(await run(notANumber).0.messages == ["Content-Length \"ten\" is not a decimal number"])
    }

    @Test func contentLengthMustMatchTheBytesStreamed() async {
        let tooFew = GatewayResponse(
            headers: [.contentType: "text/plain"],
            body: GatewayResponseBody(contentLength: 10) { try await $0.write("abc") }
        )
        #expect(await run(tooFew).0.messages == ["Content-Length is 10 but the body ended after 3 bytes"])
        let tooMany = GatewayResponse(
            headers: [.contentType: "text/plain", .contentLength: "2"],
            body: GatewayResponseBody { writer in
                try await writer.write("ab")
                try await writer.write("cd")
                try await writer.write("ef")
            }
        )
        #expect(await run(tooMany).0.messages == ["Content-Length is 2 but 4 bytes are written"])
    }

    @Test func strictStreamingViolationsCutTheResponseBeforeTheExtraBytes() async {
        let tooMany = GatewayResponse(
            headers: [.contentType: "text/plain"],
            body: GatewayResponseBody(contentLength: 2) { writer in
                try await writer.write("ab")
                try await writer.write("cd")
            }
        )
        let (violations, outcome, output) = await run(tooMany, strict: true)
        guard case .applicationFailed(headSent: true) = outcome else { Issue.record("\(outcome)"); return }
        #expect(violations.all.count == 1)
        #expect(text(output.bytes).hasSuffix("\r\n\r\nab"))
    }

    @Test func noBodyOn1xx204And304() async {
        let bytes = GatewayResponse(
            status: .noContent,
            headers: [.contentType: "a/b"],
            body: GatewayResponseBody(string: "x")
        )
        #expect(await run(bytes).0.messages == ["status 204 must not have a body, but it has 1 bytes"])
        let streamed = GatewayResponse(status: .notModified, body: GatewayResponseBody { try await $0.write("x") })
        #expect(await run(streamed).0.messages == ["status 304 must not have a body, but one is written"])
        let declared = GatewayResponse(
            status: .noContent,
            headers: [.contentLength: "4"],
            body: GatewayResponseBody { _ in }
        )
        #expect(
            await run(declared).0.messages == [
                "status 204 must not have a body, but Content-Length is 4",
                "Content-Length is 4 but the body ended after 0 bytes",
            ]
        )
    }

    @Test func contentTypeWhenThereIsABody() async {
        let bytes = GatewayResponse(body: GatewayResponseBody(string: "x"))
        #expect(await run(bytes).0.messages == ["the body has 1 bytes but there is no Content-Type"])
        let streamed = GatewayResponse(
            body: GatewayResponseBody { writer in
                try await writer.write([])
                try await writer.write("x")
                try await writer.write("y")
            }
        )
        #expect(await run(streamed).0.messages == ["the body is written but there is no Content-Type"])
        let empty = GatewayResponse(body: GatewayResponseBody { try await $0.write([]) })
        #expect(await run(empty).0.messages.isEmpty)
    }

    @Test func strictResponseViolationsBecomeA500BeforeTheHead() async {
        let (violations, outcome, output) = await run(
            GatewayResponse(body: GatewayResponseBody(string: "x")),
            strict: true
        )
        guard case .applicationFailed(headSent: false) = outcome else { Issue.record("\(outcome)"); return }
        #expect(violations.all.count == 1)
        #expect(text(output.bytes).hasPrefix("Status: 500"))
    }
}
