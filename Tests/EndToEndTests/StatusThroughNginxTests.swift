import Foundation
import GatewayTestHarness
import Testing

/// gateway-probe started with `--status-path /status --ping-path /ping` behind a real nginx
/// configured with `nginx/fastcgi-unix.conf` and `nginx/fastcgi-status.conf`: the server
/// answers those two paths itself, and everything else still reaches the application.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StatusThroughNginx {
    @Test func statusAndPingThroughNginx() async throws {
        let directory = try TemporaryDirectory(prefix: "sgw-status-", in: "/tmp")
        defer { directory.remove() }
        let executable = try BuiltProducts.executable(named: "gateway-probe")
        try await FastCGIAppProcess.with({
            try await FastCGIAppProcess.start(
                executable,
                socketPath: directory.path + "/app.sock",
                extraArguments: ["--status-path", "/status", "--ping-path", "/ping", "--slow-request-seconds", "1"],
                logFile: directory.path + "/app.log"
            )
        }) { app in
            let root = ShippedConfig.splitNginx(
                try ShippedConfig.load("nginx/fastcgi-unix.conf", socketDirectory: directory.path)
            )
            let status = try ShippedConfig.load("nginx/fastcgi-status.conf", socketDirectory: directory.path)
            try await WebServerInstance.with({
                try await NginxFastCGI.start(
                    name: "nginx with status",
                    httpContext: root.http,
                    serverContext: root.server + "\n" + status
                )
            }) { nginx in
                do {
                    try await Self.check(port: nginx.port)
                } catch {
                    Issue.record("\(error)\n--- app log:\n\(app.logTail)\n--- nginx:\n\(nginx.errorLog.suffix(4096))")
                }
            }
        }
    }

    static func check(port: Int) async throws {
        let ping = try await send(port: port, "GET", "/ping")
        #expect(ping.status == 200)
        #expect(ping.text == "pong")
        #expect(ping[header: "Content-Type"] == "text/plain; charset=utf-8")
        #expect(ping[header: "Cache-Control"] == "no-store")
        let head = try await send(port: port, "HEAD", "/ping")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)

        // The application's routes still reach it, a path under /status included.
        #expect(try await send(port: port, "GET", "/hello").text == "Hello, world!")
        #expect(try await send(port: port, "GET", "/status/204").status == 204)
        #expect(try await send(port: port, "GET", "/slow?ms=1200").text == "done")

        let text = try await send(port: port, "GET", "/status")
        #expect(text.status == 200)
        #expect(text[header: "Content-Type"] == "text/plain; charset=utf-8")
        #expect(text[header: "Cache-Control"] == "no-store")
        // ping, HEAD ping, hello, status/204, slow and this one.
        #expect(text.text.contains("\nrequests:               6\n"), "\(text.text)")
        #expect(text.text.contains("\nslow requests:          1\n"), "\(text.text)")
        #expect(text.text.hasPrefix("start time:             20"), "\(text.text)")

        let json = try await send(port: port, "GET", "/status?json")
        #expect(json[header: "Content-Type"] == "application/json")
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Int])
        #expect(figures["requests"] == 7)
        #expect(figures["requests_in_flight"] == 1)
        #expect(figures["slow_requests"] == 1)
        // The connection nginx keeps for `location /` (fastcgi-unix.conf's upstream pool), and
        // this request's own (the status location passes without keep-alive).
        #expect(figures["open_connections"] == 2)
        // ping, HEAD ping, the kept one, the text status and this one.
        #expect((figures["accepted_connections"] ?? 0) >= 5)

        for query in ["openmetrics", "prometheus"] {
            let page = try await send(port: port, "GET", "/status?" + query)
            #expect(page.status == 200)
            #expect(page[header: "Content-Type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(page.text.contains("# TYPE gateway_requests_total counter\ngateway_requests_total "))
            #expect(page.text.contains("\ngateway_slow_requests_total 1\n"))
        }
        // Other methods are refused, by the server, not passed to the application.
        let post = try await send(port: port, "POST", "/status", body: Array("x".utf8))
        #expect(post.status == 405)
    }
}
