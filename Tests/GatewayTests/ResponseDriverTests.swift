import Gateway
import GatewayTestHarness
import GatewayTesting
import HTTPTypes
import Testing

struct Failure: Error, CustomStringConvertible {
    var description: String { "the failure" }
}

func streaming(_ write: @escaping GatewayResponseBody.Writer) -> ClosureApplication {
    ClosureApplication { _ in
        GatewayResponse(headers: [.contentType: "text/plain"], body: GatewayResponseBody(write))
    }
}

@Suite("ResponseDriver")
struct ResponseDriverTests {
    @Test func inMemoryBodyGoesOutInOneLastSend() async {
        let (outcome, output) = await drive(ClosureApplication { _ in .text("hi") })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(output.sends.count == 1)
        #expect(output.sends[0].isLast)
        #expect(text(output.sends[0].head).hasPrefix("Status: 200 OK\r\n"))
        #expect(text(output.sends[0].head).contains("Content-Length: 2\r\n"))
        #expect(output.sends[0].body == Array("hi".utf8))
    }

    @Test func headWaitsForTheFirstNonEmptyWrite() async {
        let app = streaming { writer in
            try await writer.write([])
            try await writer.write("one")
            try await writer.write([])
            try await writer.write("two")
        }
        let (outcome, output) = await drive(app)
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(output.sends.count == 2)
        #expect(text(output.sends[0].head) == "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        #expect(text(output.sends[0].body) == "one")
        #expect(output.sends[1].head.isEmpty)
        #expect(text(output.sends[1].body) == "two")
        #expect(output.sends.allSatisfy { !$0.isLast })
    }

    @Test func emptyStreamSendsTheHeadAlone() async {
        let (outcome, output) = await drive(streaming { writer in try await writer.write([]) })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(output.sends.count == 1)
        #expect(output.sends[0].body.isEmpty)
        #expect(output.sends[0].isLast)
        #expect(text(output.sends[0].head).hasPrefix("Status: 200 OK"))
    }

    @Test func throwingFromRespondBecomesA500AndALogLine() async {
        let errors = ErrorCollector()
        let (outcome, output) = await drive(
            ClosureApplication { _ in throw Failure() },
            environ: environ(["REQUEST_METHOD": "POST", "PATH_INFO": "/x"], errors: errors.stream)
        )
        guard case .applicationFailed(headSent: false) = outcome else { Issue.record("\(outcome)"); return }
        let response = try? ResponseParser.parseCGI(output.bytes)
        #expect(response?.status == 500)
        #expect(response?.text == "Internal Server Error\n")
        #expect(!(response?.text.contains("the failure") ?? true))
        #expect(errors.messages.count == 1)
        #expect(errors.text.contains("POST /x"))
        #expect(errors.text.contains("the failure"))
    }

    @Test func throwingBeforeTheHeadBecomesA500() async {
        let errors = ErrorCollector()
        let app = streaming { writer in
            try await writer.write([])
            throw Failure()
        }
        let (outcome, output) = await drive(app, environ: environ(["PATH_INFO": "/"], errors: errors.stream))
        guard case .applicationFailed(headSent: false) = outcome else { Issue.record("\(outcome)"); return }
        #expect(text(output.bytes).hasPrefix("Status: 500 Internal Server Error\r\n"))
        #expect(errors.text.contains("the failure"))
    }

    @Test(arguments: [-1, Int.min])
    func aNegativeContentLengthBecomesA500NotATrap(length: Int) async {
        for body in [
            GatewayResponseBody(contentLength: length) { writer in try await writer.write("x") },
            GatewayResponseBody(contentLength: length) { _ in },
        ] {
            let errors = ErrorCollector()
            let app = ClosureApplication { _ in GatewayResponse(headers: [.contentType: "text/plain"], body: body) }
            let (outcome, output) = await drive(app, environ: environ(["PATH_INFO": "/n"], errors: errors.stream))
            guard case .applicationFailed(headSent: false) = outcome else { Issue.record("\(outcome)"); return }
            #expect(text(output.bytes).hasPrefix("Status: 500 Internal Server Error\r\n"))
            #expect(errors.text.contains("content length \(length) is negative"), "\(errors.text)")
        }
    }

    @Test(arguments: [0, 99, 101, 199, 600, 999])
    func aStatusThatCannotEndACGIResponseBecomesA500(code: Int) async {
        let errors = ErrorCollector()
        let app = ClosureApplication { _ in .text("body", status: HTTPResponse.Status(code: code)) }
        let (outcome, output) = await drive(app, environ: environ(["PATH_INFO": "/s"], errors: errors.stream))
        guard case .applicationFailed(headSent: false) = outcome else { Issue.record("\(outcome)"); return }
        #expect(text(output.bytes).hasPrefix("Status: 500 Internal Server Error\r\n"), "\(text(output.bytes))")
        #expect(errors.text.contains("status \(code)"), "\(errors.text)")
    }

    @Test func headerValuesAndReasonPhrasesCannotInjectLines() async {
        // HTTPTypes turns CR, LF and NUL in values and reason phrases into spaces, so an
        // application echoing client input into a header cannot add a header or end the head.
        var headers: HTTPFields = [.contentType: "text/plain"]
        headers[HTTPField.Name("X-Echo")!] = "a\r\nSet-Cookie: evil=1\r\n\r\nbody"
        let status = HTTPResponse.Status(code: 200, reasonPhrase: "OK\r\nSet-Cookie: evil=2")
        let fields = headers
        let app = ClosureApplication { _ in GatewayResponse(status: status, headers: fields, body: .init(string: "x")) }
        let (outcome, output) = await drive(app)
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        let head = text(output.sends[0].head)
        #expect(!head.contains("\r\nSet-Cookie"), "\(head)")
        #expect(head.components(separatedBy: "\r\n\r\n").count == 2, "\(head)")
        #expect(head.utf8.filter { $0 == UInt8(ascii: "\n") }.count == 5, "\(head)")
    }

    @Test func aBodyTooLargeEscapingBeforeTheHeadBecomesA413() async {
        let errors = ErrorCollector()
        let app = ClosureApplication { environ in
            GatewayResponse(body: GatewayResponseBody(bytes: try await environ.input.collect(upTo: 4)))
        }
        var request = environ(["REQUEST_METHOD": "POST", "PATH_INFO": "/"], errors: errors.stream)
        request.input = GatewayRequestBody(bytes: Array("too long".utf8))
        let (outcome, output) = await drive(app, environ: request)
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        let response = try? ResponseParser.parseCGI(output.bytes)
        #expect(response?.status == 413)
        #expect(response?.text == "Request body too large\n")
        #expect(errors.messages.isEmpty, "a client sending too much is not an application error: \(errors.text)")
        // After the head, it is an error like any other.
        let late = streaming { writer in
            try await writer.write("partial")
            throw RequestBodyTooLarge(maximum: 4)
        }
        let (lateOutcome, _) = await drive(late, environ: environ(["PATH_INFO": "/"], errors: errors.stream))
        guard case .applicationFailed(headSent: true) = lateOutcome else { Issue.record("\(lateOutcome)"); return }
    }

    @Test func throwingAfterTheHeadCutsTheResponseShort() async {
        let errors = ErrorCollector()
        let app = streaming { writer in
            try await writer.write("partial")
            throw Failure()
        }
        let (outcome, output) = await drive(app, environ: environ(["PATH_INFO": "/"], errors: errors.stream))
        guard case .applicationFailed(headSent: true) = outcome else { Issue.record("\(outcome)"); return }
        #expect(text(output.bytes) == "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\npartial")
        #expect(errors.text.contains("after the response began"))
        #expect(errors.text.contains("the failure"))
    }

    @Test func outputFailureStopsTheWriterAndIsReported() async {
        let attempts = ErrorCollector()
        let app = streaming { writer in
            try await writer.write("first")
            do {
                try await writer.write("second")
            } catch {
                attempts.stream.write("writer saw: \(error)")
                throw error
            }
            attempts.stream.write("not reached")
        }
        let (outcome, output) = await drive(app, output: MemoryOutput(failAtSend: 1))
        guard case .outputFailed = outcome else { Issue.record("\(outcome)"); return }
        #expect(output.sends.count == 1)
        #expect(attempts.messages.count == 1)
        #expect(attempts.text.hasPrefix("writer saw:"))
    }

    @Test func outputFailureOnAnInMemoryBody() async {
        let (outcome, _) = await drive(ClosureApplication { _ in .text("x") }, output: MemoryOutput(failAtSend: 0))
        guard case .outputFailed = outcome else { Issue.record("\(outcome)"); return }
    }

    @Test func streamWithKnownLengthSendsContentLength() async {
        let app = ClosureApplication { _ in
            GatewayResponse(
                headers: [.contentType: "a/b"],
                body: GatewayResponseBody(contentLength: 3) { try await $0.write("abc") }
            )
        }
        let (_, output) = await drive(app)
        #expect(text(output.bytes) == "Status: 200 OK\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\nabc")
    }
}

@Suite("GatewayMiddleware")
struct MiddlewareTests {
    struct Tag: GatewayMiddleware {
        let name: String
        nonisolated(nonsending) func respond(
            to environ: Environ,
            next: some GatewayApplication
        ) async throws -> GatewayResponse {
            environ.errors.write("enter \(name)")
            var response = try await next.respond(to: environ)
            response.headers.append(HTTPField(name: HTTPField.Name("X-Trace")!, value: name))
            environ.errors.write("leave \(name)")
            return response
        }
    }

    @Test func lastWrappedRunsFirst() async throws {
        let errors = ErrorCollector()
        let app = ClosureApplication { environ in
            environ.errors.write("app")
            return .text("ok")
        }
        .wrapped(in: Tag(name: "inner"))
        .wrapped(in: Tag(name: "outer"))
        let response = try await app.respond(to: environ([:], errors: errors.stream))
        #expect(errors.messages == ["enter outer\n", "enter inner\n", "app\n", "leave inner\n", "leave outer\n"])
        #expect(response.headers[values: HTTPField.Name("X-Trace")!] == ["inner", "outer"])
    }

    @Test func aWrappedApplicationRunsThroughTheDriver() async throws {
        let app = ClosureApplication { _ in .text("ok") }.wrapped(in: Tag(name: "only"))
        let response = try await app.test(.inProcess) { try await $0.execute(uri: "/") }
        #expect(response.status == .ok)
        #expect(response.headers[HTTPField.Name("X-Trace")!] == "only")
    }

    /// A middleware outside the Gateway module that rewrites a body it did not make, with
    /// public API only: the way compression or access-log byte counts are written.
    struct UppercaseBody: GatewayMiddleware {
        struct Uppercasing: GatewayResponseBodyWriter {
            var wrapped: any GatewayResponseBodyWriter
            let counted: ErrorCollector
            nonisolated(nonsending) mutating func write(_ bytes: [UInt8]) async throws {
                counted.stream.write("\(bytes.count)")
                try await wrapped.write(bytes.map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 })
            }
        }

        let counted: ErrorCollector
        nonisolated(nonsending) func respond(
            to environ: Environ,
            next: some GatewayApplication
        ) async throws -> GatewayResponse {
            var response = try await next.respond(to: environ)
            let inner = response.body
            let counted = self.counted
            response.body = GatewayResponseBody(contentLength: inner.contentLength) { writer in
                var uppercasing = Uppercasing(wrapped: writer, counted: counted)
                defer { writer = uppercasing.wrapped }
                try await inner.write(to: &uppercasing)
            }
            return response
        }
    }

    @Test func middlewareRewritesStreamingAndInMemoryBodies() async throws {
        let counted = ErrorCollector()
        let streaming = ClosureApplication { _ in
            GatewayResponse(
                headers: [.contentType: "text/plain"],
                body: GatewayResponseBody { writer in
                    try await writer.write("hello, ")
                    try await writer.write("stream")
                }
            )
        }
        .wrapped(in: UppercaseBody(counted: counted))
        let streamed = try await streaming.test(.inProcess) { try await $0.execute(uri: "/") }
        #expect(streamed.bodyString == "HELLO, STREAM")
        #expect(counted.messages == ["7\n", "6\n"], "each chunk passes through the wrapping writer")

        let inMemory = ClosureApplication { _ in .text("hello") }.wrapped(in: UppercaseBody(counted: counted))
        let answered = try await inMemory.test(.inProcess) { try await $0.execute(uri: "/") }
        #expect(answered.bodyString == "HELLO")
        #expect(answered.headers[.contentLength] == "5")
    }

    @Test func aBodyThatThrowsAfterItsHeadIsCutShortWhateverAMiddlewareDidWithTheWriter() async {
        // A middleware that never hands the server's writer back, and one that replaces it
        // with a writer of its own: the driver still knows the head went out, so it cuts the
        // response short instead of writing a second head (a 500) into the body.
        struct Forwarding: GatewayResponseBodyWriter {
            var wrapped: any GatewayResponseBodyWriter
            nonisolated(nonsending) mutating func write(_ bytes: [UInt8]) async throws {
                try await wrapped.write(bytes)
            }
        }
        let keepsTheWriter: GatewayResponseBody.Writer = { writer in
            var forwarding = Forwarding(wrapped: writer)
            try await forwarding.write("first")
            throw Failure()
        }
        let replacesTheWriter: GatewayResponseBody.Writer = { writer in
            var forwarding = Forwarding(wrapped: writer)
            writer = forwarding
            try await forwarding.write("first")
            throw Failure()
        }
        for body in [keepsTheWriter, replacesTheWriter] {
            let app = ClosureApplication { _ in
                GatewayResponse(headers: [.contentType: "text/plain"], body: GatewayResponseBody(body))
            }
            let (outcome, output) = await drive(app)
            guard case .applicationFailed(headSent: true) = outcome else { Issue.record("\(outcome)"); continue }
            #expect(text(output.bytes) == "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst")
            // The same through the validator, which wraps the writer too.
            let (validated, validatedOutput) = await drive(app.wrapped(in: GatewayValidator()))
            guard case .applicationFailed(headSent: true) = validated else { Issue.record("\(validated)"); continue }
            #expect(text(validatedOutput.bytes).hasSuffix("\r\n\r\nfirst"))
        }
    }

    @Test func inMemoryBodiesExposeTheirBytes() {
        #expect(GatewayResponseBody(string: "abc").bytes == Array("abc".utf8))
        #expect(GatewayResponseBody { try await $0.write("abc") }.bytes == nil)
    }
}
