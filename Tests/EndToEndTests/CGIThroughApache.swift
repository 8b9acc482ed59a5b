import Foundation
import GatewayTestHarness
import Testing

#if canImport(Glibc)
import Glibc
#endif

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

    /// `GATEWAY_MAX_BODY_BYTES` in CGI mode (set by a wrapper script, as a deployment's
    /// `SetEnv` would): a larger declared body is answered 413 before any of it is read; the
    /// rest is then read and dropped, without which mod_cgid's socket resets and Apache loses
    /// the 413 (seen: "ap_content_length_filter: apr_bucket_read() failed", no response).
    @Test(arguments: [100, 4 << 20])
    func aBodyOverTheLimitIs413(size: Int) async throws {
        let probe = try BuiltProducts.executable(named: "gateway-probe")
        let scripts = try TemporaryDirectory(prefix: "sgw-cgi-")
        defer { scripts.remove() }
        let wrapper = scripts.path + "/limited"
        try "#!/bin/sh\nGATEWAY_MAX_BODY_BYTES=10 exec '\(probe)'\n".write(
            toFile: wrapper,
            atomically: true,
            encoding: .utf8
        )
        #expect(chmod(wrapper, 0o755) == 0)
        try await WebServerInstance.with({ try await ApacheCGI.start(programs: [wrapper]) }) { apache in
            let transport = apache.transport(program: "limited")
            let refused = try await transport.perform(
                TestRequest("POST", "/echo", body: [UInt8](repeating: 1, count: size))
            )
            #expect(
                refused.status == 413,
                "\(refused.status) \(refused.text.prefix(200))\n\(apache.errorLog.suffix(2000))"
            )
            let small = try await transport.perform(TestRequest("POST", "/echo", body: Array("ten bytes!".utf8)))
            #expect(small.status == 200 && small.text == "ten bytes!")
        }
    }

    @Test func postOf10MiBIsEchoedByteForByte() async throws {
        try await withApache { apache in
            try await HelloThroughServer.echo10MiB(apache.transport())
        }
    }
}
