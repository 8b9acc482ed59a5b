import Foundation
import GatewayTestHarness
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// gateway-probe over FastCGI behind real nginx and Apache, started by the tests with the
/// configuration snippets the repository ships. Serialized: the servers share two CPUs.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FastCGIThroughWebServers {
    // MARK: Requests

    @Test("GET, HEAD, POST, query strings, headers, HTTPS, errors", arguments: FastCGIDeployment.allCases)
    func requests(_ deployment: FastCGIDeployment) async throws {
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            let hello = try await send(port: port, "GET", "/hello")
            #expect(hello.status == 200)
            #expect(hello.text == "Hello, world!")
            #expect(hello[header: "Content-Type"]?.hasPrefix("text/plain") == true)

            let head = try await send(port: port, "HEAD", "/hello")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head[header: "Content-Type"]?.hasPrefix("text/plain") == true)

            let posted = Array("name=swift&gateway=fastcgi".utf8)
            let echo = try await send(
                port: port,
                "POST",
                "/echo",
                headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: posted
            )
            #expect(echo.status == 200)
            #expect(echo.body == posted)

            let query = "a=1&b=two%20words&c=%C3%A9&empty="
            let environResponse = try await send(
                port: port,
                "POST",
                "/environ?" + query,
                headers: [
                    ("X-Custom", "custom value"), ("X-Repeated", "first"), ("X-Repeated", "second"),
                    ("Content-Type", "text/plain"),
                ],
                body: Array("discarded".utf8)
            )
            #expect(environResponse.status == 200)
            #expect(environResponse[header: "Content-Type"]?.hasPrefix("application/json") == true)
            let environ = try environResponse.environ()
            #expect(environ["REQUEST_METHOD"] == "POST")
            #expect(environ["QUERY_STRING"] == query)
            #expect(environ["CONTENT_LENGTH"] == "9")
            #expect(environ["CONTENT_TYPE"] == "text/plain")
            #expect(environ["HTTP_X_CUSTOM"] == "custom value")
            // Repeated request headers: Apache and nginx ≥ 1.23 join them into one variable;
            // older nginx sends one param per header line (the app sees the last one).
            let repeated = environ["HTTP_X_REPEATED"] ?? ""
            let joined = ["first, second", "first,second"].contains(repeated)
            let separate =
                environResponse.text.contains(#""HTTP_X_REPEATED":"first""#)
                && environResponse.text.contains(#""HTTP_X_REPEATED":"second""#)
            #expect(joined || separate, "HTTP_X_REPEATED: \(environResponse.text)")
            // Mounted at the root: the whole path in PATH_INFO.
            #expect(environ["PATH_INFO"] == "/environ")
            #expect(environ["REQUEST_SCHEME"] == "http")
            #expect(environ["HTTPS"] == nil || environ["HTTPS"] == "")
            #expect(environ["url_scheme"] == "http")
            #expect(environ["SERVER_PROTOCOL"] == "HTTP/1.1")
            #expect(environ["REMOTE_ADDR"] == "127.0.0.1")

            let secure = try await send(port: port, "GET", "/secure/environ?x=1").environ()
            #expect(secure["HTTPS"] == "on")
            #expect(secure["url_scheme"] == "https")
            #expect(secure["QUERY_STRING"] == "x=1")
            let encoded = try await send(port: port, "GET", "/secure/a%20b/environ").environ()
            #expect(encoded["PATH_INFO"] == "/secure/a b/environ")
            #expect(encoded["REQUEST_URI"] == "/secure/a%20b/environ")
            if deployment == .apache { #expect(encoded["SCRIPT_NAME"] == "") }

            if deployment.isNginx {
                // nginx/fastcgi-path-info.conf: SCRIPT_NAME /app, the rest in PATH_INFO.
                let split = try await send(port: port, "GET", "/app/users/environ?id=7").environ()
                #expect(split["SCRIPT_NAME"] == "/app")
                #expect(split["PATH_INFO"] == "/users/environ")
                #expect(split["QUERY_STRING"] == "id=7")
                // /application is not under /app: the root location serves it.
                let other = try await send(port: port, "GET", "/application/environ").environ()
                #expect(other["SCRIPT_NAME"] == "" && other["PATH_INFO"] == "/application/environ", "\(other)")
            }

            #expect(try await send(port: port, "GET", "/status/418").status == 418)
            #expect(try await send(port: port, "GET", "/no/such/endpoint").status == 404)
            let failed = try await send(port: port, "GET", "/error")
            #expect(failed.status == 500)
            #expect(!failed.text.contains("probe's handler"), "the error's description leaked to the client")
            #expect(try await send(port: port, "GET", "/hello").status == 200)
        }
    }

    // MARK: Large bodies

    @Test("a 256 MiB upload is echoed byte for byte", arguments: FastCGIDeployment.allCases)
    func largeUpload(_ deployment: FastCGIDeployment) async throws {
        let size = 256 << 20
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            let started = ContinuousClock.now
            let (status, received, mismatchAt) = try await onDedicatedThread {
                let connection = try HTTPStreamConnection(port: port)
                defer { connection.close() }
                var status = 0
                var received = 0
                var mismatchAt: Int?
                try connection.exchange(
                    method: "POST",
                    target: "/echo",
                    headers: [("Content-Type", "application/octet-stream")],
                    bodyLength: size,
                    body: { offset, count in PatternBody.bytes(at: offset, count: count) },
                    deadline: .now + .seconds(120),
                    onHead: { status = $0.status },
                    onBody: { bytes in
                        if mismatchAt == nil, !PatternBody.matches(bytes, at: received) { mismatchAt = received }
                        received += bytes.count
                        return true
                    }
                )
                return (status, received, mismatchAt)
            }
            reportFigure(
                "\(deployment.testDescription): 256 MiB echo in \(String(format: "%.1f", seconds(since: started))) s"
            )
            #expect(status == 200)
            #expect(received == size)
            #expect(mismatchAt == nil, "the echo differs from what was sent at byte \(mismatchAt ?? -1)")
        }
    }

    @Test("a 1 GiB download keeps the app's memory under 64 MiB", arguments: FastCGIDeployment.allCases)
    func largeDownload(_ deployment: FastCGIDeployment) async throws {
        let size = 1 << 30
        let limit = 64 << 20
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            let app = setup.app
            let started = ContinuousClock.now
            let sampler = Task {
                var highest = 0
                while !Task.isCancelled {
                    if let memory = app.memory { highest = max(highest, memory.resident) }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return highest
            }
            let download = try await onDedicatedThread {
                let connection = try HTTPStreamConnection(port: port)
                defer { connection.close() }
                var status = 0
                var received = 0
                var allX = true
                try connection.exchange(
                    method: "GET",
                    target: "/big?bytes=\(size)",
                    deadline: .now + .seconds(120),
                    onHead: { status = $0.status },
                    onBody: { bytes in
                        if allX, !RepeatedX.matches(bytes) { allX = false }
                        received += bytes.count
                        return true
                    }
                )
                return (status, received, allX)
            }
            sampler.cancel()
            let highestResident = await sampler.value
            let peak = app.memory?.peak ?? 0
            let elapsed = seconds(since: started)
            reportFigure(
                "\(deployment.testDescription): 1 GiB download in \(String(format: "%.1f", elapsed)) s "
                    + "(\(Int(Double(size) / elapsed / 1e6)) MB/s); app VmRSS max \(highestResident >> 20) MiB, "
                    + "VmHWM \(peak >> 20) MiB"
            )
            #expect(download.0 == 200)
            #expect(download.1 == size)
            #expect(download.2, "the body is not all x")
            #expect(highestResident > 0, "could not read the app's memory from /proc")
            #expect(highestResident < limit, "VmRSS reached \(highestResident >> 20) MiB")
            #expect(peak < limit, "VmHWM reached \(peak >> 20) MiB")
        }
    }

    // MARK: Streaming

    @Test("a streamed response reaches the client chunk by chunk", arguments: FastCGIDeployment.allCases)
    func streaming(_ deployment: FastCGIDeployment) async throws {
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            // 5 chunks of 10 bytes, 400 ms apart: the last is written 1.6 s after the first.
            let arrivals = try await onDedicatedThread {
                let connection = try HTTPStreamConnection(port: port)
                defer { connection.close() }
                var arrivals: [(seconds: Double, bytes: Int)] = []
                let start = ContinuousClock.now
                try connection.exchange(
                    method: "GET",
                    target: "/stream?n=5&size=10&delay_ms=400",
                    deadline: .now + .seconds(30),
                    onBody: { bytes in
                        arrivals.append((seconds(since: start), bytes.count))
                        return true
                    }
                )
                return arrivals.map { [$0.seconds, Double($0.bytes)] }
            }
            let total = arrivals.reduce(0) { $0 + Int($1[1]) }
            let first = arrivals.first?[0] ?? .infinity
            let last = arrivals.last?[0] ?? 0
            reportFigure(
                "\(deployment.testDescription): stream first chunk after \(Int(first * 1000)) ms, "
                    + "last after \(Int(last * 1000)) ms, \(arrivals.count) pieces"
            )
            #expect(total == 50)
            #expect(first < 0.8, "the first chunk took \(first) s: the response was buffered")
            #expect(last >= 1.5, "the last chunk came after \(last) s, before the app wrote it")
            #expect(last - first >= 1.2, "the chunks arrived together")
        }
    }

    // MARK: Failures

    @Test("the client hanging up mid-response leaves the app serving", arguments: FastCGIDeployment.allCases)
    func clientDisconnects(_ deployment: FastCGIDeployment) async throws {
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            for round in 0..<3 {
                let read = try await onDedicatedThread {
                    let connection = try HTTPStreamConnection(port: port)
                    var received = 0
                    try connection.exchange(
                        method: "GET",
                        target: "/big?bytes=\(1 << 30)",
                        deadline: .now + .seconds(30),
                        onBody: { bytes in
                            received += bytes.count
                            return received < 4 << 20
                        }
                    )
                    connection.close()
                    return received
                }
                #expect(read >= 4 << 20, "round \(round): only \(read) bytes before hanging up")
                let slow = try await onDedicatedThread {
                    let connection = try HTTPStreamConnection(port: port)
                    defer { connection.close() }
                    do {
                        try connection.exchange(
                            method: "GET",
                            target: "/slow?ms=3000",
                            deadline: .now + .milliseconds(300)
                        )
                        return false
                    } catch {
                        return true  // timed out: hang up while the app sleeps
                    }
                }
                #expect(slow)
            }
            try await Task.sleep(for: .milliseconds(300))
            for _ in 0..<5 {
                let hello = try await send(port: port, "GET", "/hello")
                #expect(hello.status == 200)
                #expect(hello.text == "Hello, world!")
            }
            #expect(setup.app.isRunning, "the app died")
            let signs = crashSigns(in: setup.app.log)
            #expect(signs.isEmpty, "the app's log shows \(signs)")
            // A request cancelled because its client left is not reported as an application error.
            #expect(!setup.app.log.contains("application error"), "\(setup.app.logTail)")
            if let memory = setup.app.memory {
                reportFigure(
                    "\(deployment.testDescription): after 3 abandoned 1 GiB downloads VmRSS \(memory.resident >> 20) MiB"
                )
            }
        }
    }

    /// Apache mod_proxy_fcgi drops the announced `Content-Length` and sends chunked; its cut
    /// shows the same way, as a chunked body without its last chunk.
    @Test(
        "a failure after the head reaches the client as a cut response, and the next request works",
        arguments: FastCGIDeployment.allCases
    )
    func failureAfterHead(_ deployment: FastCGIDeployment) async throws {
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            for declared in [false, true] {
                let target = "/fail-after?bytes=100000" + (declared ? "&declared=1" : "")
                let outcome = try await onDedicatedThread {
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
                let (head, received, failure) = outcome
                #expect(head?.status == 200, "\(target)\n\(setup.logs)")
                #expect(
                    failure?.contains("closed mid-body") == true,
                    "\(target): the client saw a clean response (\(received) bytes, \(failure ?? "no error"))"
                )
                #expect(received <= 100_000, "\(target): \(received) bytes")
                if declared, deployment.isNginx {
                    #expect(head?[header: "Content-Length"] == "200000", "\(target)")
                } else if !declared {
                    #expect(head?[header: "Transfer-Encoding"]?.lowercased() == "chunked", "\(target)")
                }
                reportFigure("\(deployment.testDescription): \(target) cut after \(received) bytes")
            }
            for _ in 0..<3 {
                let hello = try await send(port: port, "GET", "/hello")
                #expect(hello.status == 200 && hello.text == "Hello, world!")
            }
            #expect(setup.app.isRunning, "the app died")
            #expect(crashSigns(in: setup.app.log).isEmpty, "\(setup.app.logTail)")
        }
    }

    @Test(
        "app stopped → web server error; app restarted on the same socket → 200",
        arguments: FastCGIDeployment.allCases
    )
    func appRestart(_ deployment: FastCGIDeployment) async throws {
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            #expect(try await send(port: port, "GET", "/hello").status == 200)
            await setup.app.stop()
            #expect(!setup.app.isRunning)
            let down = try await send(port: port, "GET", "/hello")
            #expect(down.status == deployment.backendDownStatus, "got \(down.status) with the app stopped")
            try await setup.app.restart()
            let started = ContinuousClock.now
            var statuses: [Int] = []
            for _ in 0..<5 { statuses.append(try await send(port: port, "GET", "/hello").status) }
            #expect(statuses == [200, 200, 200, 200, 200], "after the restart: \(statuses)\n\(setup.logs)")
            reportFigure(
                "\(deployment.testDescription): back to 200 \(Int(seconds(since: started) * 1000)) ms after restart"
            )
            let signs = crashSigns(in: setup.app.log)
            #expect(signs.isEmpty, "the app's log shows \(signs)")
        }
    }

    @Test(
        "a new instance started while the old one drains keeps serving after the old one exits",
        arguments: [FastCGIDeployment.apache, .nginxKeepAlive]
    )
    func overlappingRestart(_ deployment: FastCGIDeployment) async throws {
        try await FastCGISetup.with(deployment) { setup in
            let port = setup.port
            let socket = setup.app.socketPath
            // Leaves kept FastCGI connections open in the web server, which the old instance drains.
            for _ in 0..<4 { #expect(try await send(port: port, "GET", "/hello").status == 200) }
            let executable = setup.app.executable
            setup.app.send(signal: SIGTERM)
            let listenerClosed = await poll(timeout: .seconds(10)) { !PortAllocator.isListening(unixSocket: socket) }
            #expect(listenerClosed, "the old instance still accepts connections after SIGTERM")
            try await FastCGIAppProcess.with({
                try await FastCGIAppProcess.start(
                    executable,
                    socketPath: socket,
                    extraArguments: deployment.appArguments,
                    logFile: setup.socketDirectory.path + "/successor.log"
                )
            }) { successor in
                let exited = await setup.app.waitForExit(timeout: .seconds(15)) != nil
                #expect(exited, "the old instance did not exit")
                #expect(
                    FileManager.default.fileExists(atPath: socket),
                    "the old instance removed its successor's socket"
                )
                var statuses: [Int] = []
                for _ in 0..<5 { statuses.append(try await send(port: port, "GET", "/hello").status) }
                #expect(statuses == [200, 200, 200, 200, 200], "after the old instance exited: \(statuses)")
                #expect(crashSigns(in: successor.log).isEmpty)
            }
        }
    }
}
