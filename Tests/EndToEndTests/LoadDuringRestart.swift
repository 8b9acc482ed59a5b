import GatewayTestHarness

/// wrk through nginx while a test restarts or kills backends: `GET /hello`, or 1 KiB POSTs to
/// `/echo`, on 64 kept client connections for a few seconds; and what nginx logged meanwhile.
enum LoadDuringRestart {
    /// Starts wrk against nginx on `port` (`method` is `GET` or `POST`), its Lua script, if
    /// any, in `directory`. The task ends with wrk's summary.
    static func start(
        _ method: String,
        port: Int,
        directory: TemporaryDirectory,
        seconds: Int
    ) throws -> Task<SoakOutcome, any Error> {
        let wrk = try RequiredTool.locate("wrk")
        var script: String?
        if method == "POST" {
            script = try directory.write(
                "post.lua",
                """
                wrk.method = "POST"
                wrk.body = string.rep("x", 1024)
                wrk.headers["Content-Type"] = "application/octet-stream"

                """
            )
        }
        let path = method == "POST" ? "/echo" : "/hello"
        return Task {
            try await SoakOutcome.runWrk(
                wrk,
                port: port,
                path: path,
                script: script,
                connections: 64,
                seconds: seconds
            )
        }
    }

    /// The `[error]` lines of nginx's log: what it saw go wrong with its upstreams, retried or not.
    static func upstreamErrors(of server: WebServerInstance) -> [Substring] {
        server.errorLog.split(separator: "\n").filter { $0.contains("[error]") }
    }
}
