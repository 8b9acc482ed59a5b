public import SwiftGateway

/// The application `GatewayTestingTests` runs over every transport of `GatewayTesting`: a
/// greeting, a created resource with headers, a streamed response, an echo of the request body,
/// a failure and a 404. It is also this target's executable, so the `.cgi` transport can run
/// the very same application as a CGI process.
public struct ExampleApplication: GatewayApplication {
    /// The application; it keeps no state.
    public init() {}

    /// Answers the routes the testing API's tests exercise over every transport.
    nonisolated(nonsending) public func respond(to environ: Environ) async throws -> GatewayResponse {
        switch environ.pathInfo {
        case "", "/":
            return .text("Hello, world!")

        case "/created":  // A status other than 200, a header of the app's own, one echoed back.
            var headers: HTTPFields = [.location: "/things/1", .contentType: "text/plain; charset=utf-8"]
            headers[HTTPField.Name("X-Example")!] = "created"
            if let echo = environ.headers[HTTPField.Name("X-Echo")!] {
                headers[HTTPField.Name("X-Echoed")!] = echo
            }
            return GatewayResponse(status: .created, headers: headers, body: GatewayResponseBody(string: "made\n"))

        case "/stream":  // `n` lines of 1 KiB written one by one, with no Content-Length.
            let count = min(Int(environ.queryString.dropFirst("n=".count)) ?? 3, 4096)
            return GatewayResponse(
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: GatewayResponseBody { writer in
                    for index in 0..<count {
                        try await writer.write(Self.streamLine(index))
                    }
                }
            )

        case "/echo":  // The request body back (at most 8 MiB), with its method.
            // Read in full before answering: nginx sends a FastCGI application the whole body
            // before it reads any of the response, so an echo that answers while it reads
            // stalls behind nginx once the body outgrows the socket's buffers.
            let body = try await environ.input.collect(upTo: 8 << 20)
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            headers[HTTPField.Name("X-Method")!] = environ.requestMethod
            return GatewayResponse(headers: headers, body: GatewayResponseBody(bytes: body))

        case "/error":
            throw ExampleError.requested

        default:
            return .text("Not Found\n", status: .notFound)
        }
    }

    /// Line `index` of `/stream`: 1024 bytes, numbered, so a test can check every one arrived.
    public static func streamLine(_ index: Int) -> String {
        let number = String(index)
        return number + String(repeating: ".", count: 1023 - number.count) + "\n"
    }
}

/// What `/error` throws: the server turns it into a 500 without showing it.
enum ExampleError: Error {
    case requested
}
