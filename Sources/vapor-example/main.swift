#if canImport(Glibc)
import Glibc
#endif

#if Vapor
import GatewayVapor
import SwiftGateway
import Vapor

/// A Vapor 4 app served through the gateway: `routes(_:)` is the app's own, unchanged; instead
/// of `app.execute()` (which starts Vapor's HTTP server) the app is booted and served.
///
/// Runs as CGI, as a FastCGI server (`--socket`, `--port`), or on a socket from spawn-fcgi.
/// Vapor's own command line is not run: the flags are the gateway's.

/// At most this many lines per `/stream` request, and bytes per line: the client chooses both.
let maximumLines = 10_000_000
let maximumLineBytes = 1 << 20

struct User: Content {
    let id: String
}

func routes(_ app: Application) {
    app.get("hello") { _ in
        "Hello, world!"
    }

    // Vapor collects the request body (Vapor 4 streams it only inside its own server); the
    // response streams it back.
    app.on(.POST, "echo", body: .collect(maxSize: "80mb")) { request in
        Response(
            status: .ok,
            headers: ["Content-Type": "application/octet-stream"],
            body: .init(buffer: request.body.data ?? ByteBuffer())
        )
    }

    // Reads the body and answers its length (Vapor collects it first: see GatewayVapor).
    app.on(.POST, "count", body: .collect(maxSize: "80mb")) { request in
        "\(request.body.data?.readableBytes ?? 0)"
    }

    app.get("users", ":id") { request in
        User(id: try request.parameters.require("id"))
    }

    // N lines, each written (and so sent on) before the next is made; `delay_ms` between them.
    app.get("stream") { request in
        guard let n = request.query[Int.self, at: "n"], (0...maximumLines).contains(n) else {
            throw Abort(.badRequest, reason: "n must be 0…\(maximumLines)")
        }
        let delay = min(max(request.query[Int.self, at: "delay_ms"] ?? 0, 0), 10_000)
        let size = min(max(request.query[Int.self, at: "size"] ?? 0, 0), maximumLineBytes)
        let logger = request.logger
        return Response(
            status: .ok,
            headers: ["Content-Type": "text/plain; charset=utf-8"],
            body: .init(asyncStream: { writer in
                var written = 0
                do {
                    for line in 0..<n {
                        if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                        try await writer.writeBuffer(ByteBuffer(string: paddedLine(line, size: size)))
                        written += 1
                    }
                    try await writer.write(.end)
                } catch {
                    logger.info("stream stopped after \(written) of \(n) lines: \(error)")
                    throw error
                }
            })
        )
    }
}

/// `line N` and a newline, padded with `x` before the newline to `size` bytes when it is shorter.
func paddedLine(_ number: Int, size: Int) -> String {
    let text = "line \(number)"
    let padding = size - text.utf8.count - 1
    return padding > 0 ? text + String(repeating: "x", count: padding) + "\n" : text + "\n"
}

// Vapor's environment from VAPOR_ENV (or development), not from the gateway's flags.
let app = try await Application.make(
    Environment(name: Environment.get("VAPOR_ENV") ?? "development", arguments: ["vapor"])
)
// The 64 MiB echo: bodies up to 80 MiB are read (in memory: Vapor 4 streams them only in its server).
app.routes.defaultMaxBodySize = "80mb"
routes(app)
try await app.asyncBoot()
await serve(GatewayVapor(app))
try await app.asyncShutdown()
#else
printError("vapor-example was built without the Vapor trait: swift build --traits Vapor")
exit(69)  // EX_UNAVAILABLE
#endif

/// Writes `message` and a newline to standard error (fd 2; no shared `stderr` FILE).
func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
