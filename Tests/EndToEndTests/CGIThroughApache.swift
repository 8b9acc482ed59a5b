import Foundation
import GatewayTesting
import Testing

/// `hello` as CGI behind a real Apache httpd (mpm_event + mod_cgid) started by the tests.
@Suite("CGI through Apache mod_cgid", .serialized, .timeLimit(.minutes(3)))
struct CGIThroughApache {
    func withApache(_ body: (WebServerInstance) async throws -> Void) async throws {
        let hello = try HelloThroughServer.hello
        try await WebServerInstance.with({ try await ApacheCGI.start(programs: [hello]) }, body)
    }

    @Test func requestsQueryStringsHeadersHTTPSAndErrors() async throws {
        try await withApache { apache in
            try await HelloThroughServer.helloAndNotFound(apache.transport())
            try await HelloThroughServer.queryAndHeaders(apache.transport())
            try await HelloThroughServer.https(apache.secureTransport())
            try await HelloThroughServer.errorIs500(apache.transport()) { apache.errorLog }
        }
    }

    /// gateway-probe as CGI: `/fail-after` exits with status 1 after the head and 100000
    /// bytes, writing nothing more, and logs why. What the client then sees is Apache's
    /// choice, recorded here: mod_cgid sends the body chunked (even when the script announced
    /// `Content-Length`) and ends it cleanly when the script exits, so through Apache a CGI
    /// application cannot make a failure after the head visible (the specification says so).
    @Test func aFailureAfterTheHeadEndsTheScriptAndIsLogged() async throws {
        let probe = try BuiltProducts.executable(named: "gateway-probe")
        try await WebServerInstance.with({ try await ApacheCGI.start(programs: [probe]) }) { apache in
            let port = apache.port
            for declared in [true, false] {
                let target = "/cgi-bin/gateway-probe/fail-after?bytes=100000" + (declared ? "&declared=1" : "")
                let (head, received, failure) = try await onDedicatedThread {
                    let connection = try HTTPStreamConnection(port: port)
                    defer { connection.close() }
                    var head: HTTPResponseHead?
                    var received = 0
                    do {
                        try connection.exchange(
                            method: "GET",
                            target: target,
                            deadline: .now + .seconds(30),
                            onHead: { head = $0 },
                            onBody: { bytes in
                                received += bytes.count
                                return true
                            }
                        )
                        return (head, received, nil as String?)
                    } catch {
                        return (head, received, "\(error)")
                    }
                }
                let framing =
                    head?[header: "Content-Length"].map { "Content-Length \($0)" }
                    ?? head?[header: "Transfer-Encoding"] ?? "none"
                print(
                    "e2e figure: Apache mod_cgid \(target): status \(head?.status ?? 0), \(received) bytes, "
                        + "\(framing), \(failure ?? "ended cleanly")"
                )
                #expect(head?.status == 200)
                #expect(received == 100_000, "\(target)")
            }
            let logged = await poll(timeout: .seconds(5)) {
                apache.errorLog.contains("application error after the response began")
            }
            #expect(logged, "\(apache.errorLog)")
            let hello = try await apache.transport(program: "gateway-probe").perform(TestRequest("GET", "/hello"))
            #expect(hello.status == 200 && hello.text == "Hello, world!")
        }
    }

    @Test func postOf10MiBIsEchoedByteForByte() async throws {
        try await withApache { apache in
            try await HelloThroughServer.echo10MiB(apache.transport())
        }
    }
}
