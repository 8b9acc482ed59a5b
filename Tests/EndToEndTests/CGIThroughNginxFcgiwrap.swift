import GatewayTestHarness
import Testing

/// `hello` as CGI behind a real nginx speaking FastCGI to fcgiwrap, both started by the tests.
@Suite("CGI through nginx + fcgiwrap", .serialized, .timeLimit(.minutes(3)))
struct CGIThroughNginxFcgiwrap {
    func withNginx(_ body: (WebServerInstance) async throws -> Void) async throws {
        let hello = try HelloThroughServer.hello
        try await WebServerInstance.with({ try await NginxFcgiwrap.start(programs: [hello]) }, body)
    }

    @Test func requestsQueryStringsHeadersHTTPSAndErrors() async throws {
        try await withNginx { nginx in
            try await HelloThroughServer.helloAndNotFound(nginx.transport())
            try await HelloThroughServer.queryAndHeaders(nginx.transport())
            try await HelloThroughServer.https(nginx.secureTransport())
            try await HelloThroughServer.errorIs500(nginx.transport()) { nginx.errorLog }
        }
    }

    @Test func postOf10MiBIsEchoedByteForByte() async throws {
        try await withNginx { nginx in
            try await HelloThroughServer.echo10MiB(nginx.transport())
        }
    }
}

/// The same checks against the CGI process alone, to show one body runs on any transport.
@Suite("CGI through no server (process transport)")
struct CGIThroughProcessOnly {
    @Test func sameChecksAsThroughTheServers() async throws {
        let transport = CGIProcessTransport(executable: try HelloThroughServer.hello)
        try await HelloThroughServer.helloAndNotFound(transport)
        try await HelloThroughServer.queryAndHeaders(transport)
    }
}
