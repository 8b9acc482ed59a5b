import CGI
import Foundation
import Gateway
import GatewayTestHarness
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The CGI runner's body limit, its lazy spool and its environment hygiene.
@Suite("CGI body limit and environment")
struct CGIBodyLimitTests {
    let hello: CGIProcessTransport

    init() throws {
        hello = CGIProcessTransport(executable: try BuiltProducts.executable(named: "hello"))
    }

    func variables(_ request: TestRequest, _ extra: [(String, String)]) -> [(name: String, value: String)] {
        hello.environment.variables(for: request) + extra.map { (name: $0.0, value: $0.1) }
    }

    @Test func aDeclaredBodyOverGatewayMaxBodyBytesIs413() async throws {
        let request = TestRequest("POST", "/echo", body: Array("eleven byte".utf8))
        let result = try await hello.run(
            environment: variables(request, [("GATEWAY_MAX_BODY_BYTES", "10")]),
            input: .bytes(request.body)
        )
        let response = try ResponseParser.parseCGI(result.standardOutput)
        #expect(response.status == 413, "\(String(decoding: result.standardOutput, as: UTF8.self))")
        #expect(result.status == 0)
        #expect(result.errorText.contains("over the limit of 10"), "\(result.errorText)")
        // At the limit it is served.
        let exact = try await hello.run(
            environment: variables(request, [("GATEWAY_MAX_BODY_BYTES", "11")]),
            input: .bytes(request.body)
        )
        #expect(try ResponseParser.parseCGI(exact.standardOutput).body == request.body)
    }

    @Test func theDefaultLimitIs1GiBAndNothingIsReadBeforeTheRefusal() async throws {
        // 2 GiB announced, nothing sent: refused before any read (a read would find the end early).
        var request = TestRequest("POST", "/echo")
        request.body = []
        let environment =
            variables(request, []).filter { $0.name != "CONTENT_LENGTH" } + [
                (name: "CONTENT_LENGTH", value: String(2 << 30))
            ]
        let result = try await hello.run(environment: environment, input: .null)
        #expect(try ResponseParser.parseCGI(result.standardOutput).status == 413, "\(result.errorText)")
        #expect(result.status == 0)
    }

    @Test(arguments: ["abc", "-1", "1e9", "99999999999999999999"])
    func aMalformedLimitAnswers500WithALogLine(value: String) async throws {
        let request = TestRequest("GET", "/")
        let result = try await hello.run(
            environment: variables(request, [("GATEWAY_MAX_BODY_BYTES", value)]),
            input: .null
        )
        #expect(try ResponseParser.parseCGI(result.standardOutput).status == 500)
        #expect(result.status == 64)
        #expect(result.errorText.contains("GATEWAY_MAX_BODY_BYTES=\(value)"), "\(result.errorText)")
    }

    @Test func httpProxyLeavesTheProcessEnvironmentButStaysInTheEnviron() {
        setenv("HTTP_PROXY", "http://attacker.invalid:8080", 1)
        defer { unsetenv("HTTP_PROXY") }
        let variables = CGIServer.takeProcessEnvironment()
        #expect(getenv("HTTP_PROXY") == nil)
        let environ = Environ(
            variables: variables,
            errors: .discarding,
            multithread: false,
            multiprocess: true,
            runOnce: true
        )
        #expect(environ["HTTP_PROXY"] == "http://attacker.invalid:8080")
    }

    /// An application that never reads its body answers before any of the body is read, so
    /// nothing is spooled (the old runner read the whole declared body, into a file past
    /// 1 MiB, before its first write). The body is then read and dropped, so the process exits
    /// with its input consumed (mod_cgid would lose the response otherwise).
    @Test(.timeLimit(.minutes(1)))
    func anApplicationThatNeverReadsItsBodyAnswersBeforeAnyOfItIsRead() async throws {
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        try #require(pipe(&input) == 0 && pipe(&output) == 0)
        let bodySize = 4 << 20
        let (inputRead, inputWrite, outputRead, outputWrite) = (input[0], input[1], output[0], output[1])
        // The web server: waits (at most 5 s) for the response to begin, then sends the body.
        let webServer = Task.detached { () -> (answeredFirst: Bool, response: [UInt8]) in
            var descriptor = pollfd(fd: outputRead, events: Int16(POLLIN), revents: 0)
            let answeredFirst = poll(&descriptor, 1, 5000) == 1
            let chunk = [UInt8](repeating: 1, count: 65536)
            var written = 0
            while written < bodySize {
                let count = write(inputWrite, chunk, min(chunk.count, bodySize - written))
                if count <= 0 { break }
                written += count
            }
            close(inputWrite)
            var response: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(outputRead, &buffer, buffer.count)
                if count <= 0 { break }
                response += buffer[0..<count]
            }
            close(outputRead)
            return (answeredFirst, response)
        }
        let runner = Task.detached {
            let status = await CGIServer.run(
                ClosureApplication { _ in .text("not reading") },
                variables: CGIVariables([("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", String(bodySize))]),
                input: inputRead,
                output: outputWrite,
                error: 2
            )
            close(outputWrite)
            // Consumed: nothing of the body is left for the web server's socket to reset on.
            _ = fcntl(inputRead, F_SETFL, fcntl(inputRead, F_GETFL) | O_NONBLOCK)
            var probe = [UInt8](repeating: 0, count: 1)
            let pending = max(read(inputRead, &probe, 1), 0)
            close(inputRead)
            return (status, pending)
        }
        let (status, pending) = await runner.value
        let (answeredFirst, response) = await webServer.value
        #expect(answeredFirst, "the response waited for the body the application never read")
        #expect(status == 0)
        #expect(pending == 0, "the body was not all read before the process would exit")
        #expect(try ResponseParser.parseCGI(response).text == "not reading")
    }

    /// The deadlock the spool exists for: a web server (mod_cgid) that writes the whole body
    /// before reading any output, and an application that writes a large response before it
    /// reads its body. Both pipes fill unless the runner spools while its write waits.
    @Test(.timeLimit(.minutes(1)))
    func aResponseWrittenBeforeTheBodyIsReadDoesNotDeadlockAWebServerThatWritesFirst() async throws {
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        try #require(pipe(&input) == 0 && pipe(&output) == 0)
        let bodySize = 3 << 20
        let responseSize = 2 << 20
        let (inputRead, inputWrite, outputRead, outputWrite) = (input[0], input[1], output[0], output[1])
        // The web server: writes the whole body, closes, then reads the whole response.
        let webServer = Task.detached { () -> Int in
            let chunk = [UInt8](repeating: 1, count: 65536)
            var written = 0
            while written < bodySize {
                let count = write(inputWrite, chunk, min(chunk.count, bodySize - written))
                if count <= 0 { break }
                written += count
            }
            close(inputWrite)
            var received = 0
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(outputRead, &buffer, buffer.count)
                if count <= 0 { break }
                received += count
            }
            close(outputRead)
            return received
        }
        let app = ClosureApplication { environ in
            GatewayResponse(
                headers: [.contentType: "application/octet-stream"],
                body: GatewayResponseBody { writer in
                    try await writer.write([UInt8](repeating: UInt8(ascii: "r"), count: responseSize))
                    let count = try await environ.input.discard()
                    try await writer.write("\n\(count)")
                }
            )
        }
        let runner = Task.detached {
            let status = await CGIServer.run(
                app,
                variables: CGIVariables([("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", String(bodySize))]),
                input: inputRead,
                output: outputWrite,
                error: 2
            )
            close(outputWrite)
            close(inputRead)
            return status
        }
        // A deadlock would hold both tasks forever; the test's time limit ends it.
        let status = await runner.value
        let received = await webServer.value
        #expect(status == 0)
        #expect(received > responseSize + String(bodySize).count)
    }

    func temporaryFile() throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/cgi-limit-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        unlink(template)
        return fd
    }

    func contents(of fd: Int32) -> [UInt8] {
        lseek(fd, 0, SEEK_SET)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return bytes }
            bytes += buffer[0..<count]
        }
    }
}
