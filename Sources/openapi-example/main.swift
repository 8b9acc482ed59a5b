#if canImport(Glibc)
import Glibc
#endif

#if OpenAPI
import GatewayOpenAPI
import HTTPTypes
import OpenAPIRuntime
import SwiftGateway

/// A swift-openapi-runtime server served through the gateway. `ExampleAPI.registerHandlers(on:)`
/// is what swift-openapi-generator writes for this document's four operations (hand-written
/// here, so the example does not build the generator):
///
/// ```yaml
/// paths:
///   /hello:      { get:  { operationId: getHello } }
///   /echo:       { post: { operationId: postEcho } }
///   /users/{id}: { get:  { operationId: getUser } }
///   /stream:     { get:  { operationId: getStream, parameters: [{ name: n, in: query }] } }
/// ```
///
/// Only the transport differs from an app on Vapor or Hummingbird's transport.
struct ExampleAPI: Sendable {
    /// At most this many lines per `/stream` request, and bytes per line: the client chooses both.
    static let maximumLines = 10_000_000
    static let maximumLineBytes = 1 << 20

    func registerHandlers(on transport: any ServerTransport) throws {
        try transport.register(
            { _, _, _ in
                (HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), HTTPBody("Hello, world!"))
            },
            method: .get,
            path: "/hello"
        )

        // The request's HTTPBody is handed back as the response's: it streams through.
        try transport.register(
            { _, body, _ in
                (
                    HTTPResponse(status: .ok, headerFields: [.contentType: "application/octet-stream"]),
                    body ?? HTTPBody()
                )
            },
            method: .post,
            path: "/echo"
        )

        // Reads the body as it arrives and answers its length: an upload that is never held whole.
        try transport.register(
            { _, body, _ in
                var count = 0
                if let body { for try await chunk in body { count += chunk.count } }
                return (HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain"]), HTTPBody("\(count)"))
            },
            method: .post,
            path: "/count"
        )

        try transport.register(
            { _, _, metadata in
                let id = metadata.pathParameters["id"].map(String.init) ?? ""
                let json = "{\"id\":\(Self.jsonString(id))}"
                return (HTTPResponse(status: .ok, headerFields: [.contentType: "application/json"]), HTTPBody(json))
            },
            method: .get,
            path: "/users/{id}"
        )

        try transport.register(
            { request, _, _ in
                guard let n = Self.queryInteger("n", in: request.path ?? ""), (0...Self.maximumLines).contains(n) else {
                    return (HTTPResponse(status: .badRequest), HTTPBody("n must be 0…\(Self.maximumLines)\n"))
                }
                let delay = min(max(Self.queryInteger("delay_ms", in: request.path ?? "") ?? 0, 0), 10_000)
                let size = min(max(Self.queryInteger("size", in: request.path ?? "") ?? 0, 0), Self.maximumLineBytes)
                return (
                    HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain; charset=utf-8"]),
                    HTTPBody(
                        Lines(count: n, size: size, delayMilliseconds: delay),
                        length: .unknown,
                        iterationBehavior: .single
                    )
                )
            },
            method: .get,
            path: "/stream"
        )
    }

    /// The decimal value of query parameter `name` in `target`, nil when absent or not a number.
    static func queryInteger(_ name: String, in target: String) -> Int? {
        guard let start = target.firstIndex(of: "?") else { return nil }
        for pair in target[target.index(after: start)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2, parts[0] == name, parts[1].count <= 9, parts[1].allSatisfy(\.isASCII) {
                return Int(parts[1])
            }
        }
        return nil
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\u{00}"..."\u{1F}":
                quoted += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}

/// `count` lines, each made only when the transport asks for the next chunk (after it wrote
/// the one before), so the response streams one line at a time and stops when the client goes;
/// each padded with `x` to `size` bytes when it is shorter.
struct Lines: AsyncSequence, Sendable {
    typealias Element = ArraySlice<UInt8>
    let count: Int
    let size: Int
    let delayMilliseconds: Int

    func makeAsyncIterator() -> Iterator { Iterator(count: count, size: size, delayMilliseconds: delayMilliseconds) }

    /// Says in the log when it is dropped before the last line: the client went away.
    final class Iterator: AsyncIteratorProtocol {
        let count: Int
        let size: Int
        let delayMilliseconds: Int
        var written = 0

        init(count: Int, size: Int, delayMilliseconds: Int) {
            self.count = count
            self.size = size
            self.delayMilliseconds = delayMilliseconds
        }

        func next() async throws -> ArraySlice<UInt8>? {
            guard written < count else { return nil }
            try Task.checkCancellation()
            if delayMilliseconds > 0 { try await Task.sleep(for: .milliseconds(delayMilliseconds)) }
            written += 1
            let label = Array("line \(written - 1)".utf8)
            var line = [UInt8](repeating: UInt8(ascii: "x"), count: Swift.max(size, label.count + 1))
            line.replaceSubrange(0..<label.count, with: label)
            line[line.count - 1] = UInt8(ascii: "\n")
            return line[...]
        }

        deinit {
            if written < count { printError("stream stopped after \(written) of \(count) lines") }
        }
    }
}

let transport = GatewayOpenAPITransport()
do {
    try ExampleAPI().registerHandlers(on: transport)
} catch {
    printError("openapi-example: \(error)")
    exit(70)
}
await serve(transport)
#else
printError("openapi-example was built without the OpenAPI trait: swift build --traits OpenAPI")
exit(69)  // EX_UNAVAILABLE
#endif

/// Writes `message` and a newline to standard error (fd 2; no shared `stderr` FILE).
func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
