import Foundation
import Gateway
import GatewayHTTPServer
import GatewayTestHarness
import Testing

/// The same application, asked the same requests through the development server and through
/// real nginx in front of the FastCGI server, sees the same environ.
@Suite("Environ like nginx's fastcgi_params", .serialized, .timeLimit(.minutes(2)))
struct EnvironLikeNginxTests {
    /// Echoes the variables the app sees (last value of each name), sorted, and its body size.
    static let echo = ClosureApplication { environ in
        var seen: [String: String] = [:]
        for (name, value) in environ.variables { seen[name] = value }
        let bodySize = try await environ.input.collect(upTo: 1 << 20).count
        let lines = seen.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return .text((lines + ["BODY=\(bodySize)"]).joined(separator: "\n") + "\n")
    }

    /// Variables that differ by nature: the ports, the server software, and what only nginx's
    /// configuration defines (its `server_name` and `root`).
    static let differing: Set<String> = [
        "REMOTE_PORT", "SERVER_PORT", "SERVER_SOFTWARE", "SERVER_NAME", "DOCUMENT_ROOT",
        // Deliberate: nginx passes a client's `Proxy:` header on (httpoxy); this server never does.
        "HTTP_PROXY",
    ]

    struct Request: Sendable, CustomTestStringConvertible {
        var method: String
        var target: String
        var headers: [(name: String, value: String)] = []
        var body: [UInt8] = []
        var testDescription: String { "\(method) \(target)" }
    }

    static let requests: [Request] = [
        Request(method: "GET", target: "/"),
        Request(
            method: "GET",
            target: "/a%20b/./c//d/../e%2Fx?x=1&y=%20z+w",
            headers: [
                ("User-Agent", "swift-gateway-test/1"), ("Accept", "text/plain"), ("Cookie", "a=1; b=2"),
                ("X-Request-ID", "abc-123"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ("Authorization", "Basic dXNlcjpwYXNz"), ("X-Under_score", "dropped by nginx"),
            ]
        ),
        Request(
            method: "POST",
            target: "/submit/%C3%A9t%C3%A9?",
            headers: [("Content-Type", "application/json")],
            body: Array(#"{"hello":"world"}"#.utf8)
        ),
        Request(method: "DELETE", target: "/items/42?force=true", headers: [("Proxy", "http://evil.example")]),
        Request(method: "GET", target: "/x/%2e%2E/y/.?q", headers: [("Host", "Example.COM:8080")]),
        Request(method: "GET", target: "http://Other.Example:81/abs/path?z=1"),
        Request(method: "OPTIONS", target: "/caf%C3%A9%25/"),
        // What nginx refuses with 400, the development server refuses too.
        Request(method: "GET", target: "/../etc/passwd"),
        Request(method: "GET", target: "/a/%2e%2e/%2e%2e/b"),
        Request(method: "GET", target: "/nul%00byte"),
        Request(method: "GET", target: "/bad%zzescape"),
    ]

    static func parse(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }

    @Test("same variables as nginx + FastCGI")
    func sameVariablesAsNginx() async throws {
        let fastCGI = try await FastCGIInProcessServer.start(Self.echo)
        let socketDirectory = URL(fileURLWithPath: fastCGI.socketPath).deletingLastPathComponent().path
        let nginx: WebServerInstance
        do {
            let snippet = try ShippedConfig.load(
                "nginx/fastcgi-unix.conf",
                socketDirectory: socketDirectory,
                replacements: [("app.sock", "fcgi.sock")]
            )
            let split = ShippedConfig.splitNginx(snippet)
            nginx = try await NginxFastCGI.start(
                name: "nginx for environ comparison",
                httpContext: split.http,
                serverContext: split.server
            )
        } catch {
            await fastCGI.stop()
            throw error
        }
        do {
            try await withHTTPServer(Self.echo) { port in
                for request in Self.requests {
                    try await Self.compare(request, nginxPort: nginx.port, httpPort: port)
                }
            }
        } catch {
            await nginx.stop()
            await fastCGI.stop()
            throw error
        }
        await nginx.stop()
        await fastCGI.stop()
    }

    static func compare(_ request: Request, nginxPort: Int, httpPort: Int) async throws {
        let throughNginx = try await HTTPClient.send(
            port: nginxPort,
            method: request.method,
            target: request.target,
            headers: request.headers,
            body: request.body
        )
        let direct = try await HTTPClient.send(
            port: httpPort,
            method: request.method,
            target: request.target,
            headers: request.headers,
            body: request.body
        )
        #expect(direct.status == throughNginx.status, "\(request.testDescription)")
        guard throughNginx.status == 200 else { return }
        let expected = parse(String(decoding: throughNginx.body, as: UTF8.self))
        let actual = parse(String(decoding: direct.body, as: UTF8.self))
        #expect(expected["REQUEST_METHOD"] == request.method)
        for name in Set(expected.keys).union(actual.keys).subtracting(differing).sorted() {
            #expect(actual[name] == expected[name], "\(request.testDescription): \(name)")
        }
        #expect(actual["SERVER_PORT"] == String(httpPort))
        #expect(actual["HTTP_PROXY"] == nil)
    }
}
