import Gateway

/// Collects what a response body writes, as a server would send it.
struct CollectingWriter: GatewayResponseBodyWriter {
    var bytes: [UInt8] = []
    nonisolated(nonsending) mutating func write(_ bytes: [UInt8]) async throws {
        self.bytes += bytes
    }
}

/// An environ for `method path?query` with `headers` as `HTTP_*` variables.
func makeEnviron(
    _ method: String = "GET",
    _ path: String = "/",
    query: String = "",
    headers: [(String, String)] = []
)
    -> Environ
{
    var variables: [(String, String)] = [
        ("REQUEST_METHOD", method), ("SCRIPT_NAME", ""), ("PATH_INFO", path), ("QUERY_STRING", query),
        ("SERVER_PROTOCOL", "HTTP/1.1"), ("SERVER_NAME", "localhost"), ("SERVER_PORT", "8080"),
        ("REMOTE_ADDR", "127.0.0.1"), ("HTTP_HOST", "localhost"),
    ]
    variables += headers
    return Environ(variables: CGIVariables(variables), multithread: true, multiprocess: false, runOnce: false)
}

/// Answers `environ` through `application` and writes its body to the end.
func answer(_ application: some GatewayApplication, _ environ: Environ) async throws -> (GatewayResponse, [UInt8]) {
    let response = try await application.respond(to: environ)
    var writer = CollectingWriter()
    try await response.body.write(to: &writer)
    return (response, writer.bytes)
}

struct Boom: Error {}
