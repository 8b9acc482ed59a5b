import GatewayTestHarness
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

    @Test func postOf10MiBIsEchoedByteForByte() async throws {
        try await withApache { apache in
            try await HelloThroughServer.echo10MiB(apache.transport())
        }
    }
}
