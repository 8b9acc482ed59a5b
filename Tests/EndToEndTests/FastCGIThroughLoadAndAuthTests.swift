import Foundation
import GatewayTestHarness
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FastCGIThroughWebServers {
    // MARK: Two backends

    @Test("two backends behind one nginx upstream: one killed under load, the other serves")
    func twoBackendsOneKilled() async throws {
        let probe = try BuiltProducts.executable(named: "gateway-probe")
        let directory = try TemporaryDirectory(prefix: "swift-gateway-app-")
        defer { directory.remove() }
        // One backend started with its flag, the other by spawn-fcgi (listening socket on fd 0).
        func backend(_ number: Int, launch: FastCGIAppProcess.Launch) async throws -> FastCGIAppProcess {
            try await FastCGIAppProcess.start(
                probe,
                socketPath: directory.path + "/app-\(number).sock",
                launch: launch,
                logFile: directory.path + "/app-\(number).log"
            )
        }
        try await FastCGIAppProcess.with({ try await backend(1, launch: .socketFlag) }) { first in
            try await FastCGIAppProcess.with({ try await backend(2, launch: .spawnFCGI) }) { second in
                try await WebServerInstance.with({
                    try await NginxFastCGI.start(
                        shipped: "nginx/fastcgi-two-backends.conf",
                        socketDirectory: directory.path
                    )
                }) { server in
                    let port = server.port
                    // Both backends serve before the kill.
                    for _ in 0..<20 { #expect(try await send(port: port, "GET", "/hello").status == 200) }

                    let clients = 8
                    let loadSeconds = 3.0
                    let killAfter = 1.0
                    let start = ContinuousClock.now
                    let killedAt = KillTime()
                    let results = try await withThrowingTaskGroup(of: [(start: Double, end: Double, ok: Bool)].self) {
                        group in
                        for _ in 0..<clients {
                            group.addTask {
                                try await onDedicatedThread {
                                    var results: [(start: Double, end: Double, ok: Bool)] = []
                                    while seconds(since: start) < loadSeconds {
                                        let began = seconds(since: start)
                                        var ok = false
                                        if let connection = try? HTTPStreamConnection(port: port) {
                                            var status = 0
                                            var body: [UInt8] = []
                                            let completed = try? connection.exchange(
                                                method: "GET",
                                                target: "/hello",
                                                deadline: .now + .seconds(10),
                                                onHead: { status = $0.status },
                                                onBody: {
                                                    body.append(contentsOf: $0)
                                                    return true
                                                }
                                            )
                                            ok =
                                                completed == true && status == 200
                                                && body == Array("Hello, world!".utf8)
                                            connection.close()
                                        }
                                        results.append((began, seconds(since: start), ok))
                                    }
                                    return results
                                }
                            }
                        }
                        group.addTask {
                            try await Task.sleep(for: .seconds(killAfter))
                            killedAt.value.withLock { $0 = seconds(since: start) }
                            await first.kill()
                            return []
                        }
                        var all: [(start: Double, end: Double, ok: Bool)] = []
                        for try await part in group { all += part }
                        return all
                    }
                    let kill = killedAt.value.withLock { $0 } ?? killAfter
                    let failures = results.filter { !$0.ok }
                    let inFlightAtKill = results.filter { $0.start <= kill && $0.end >= kill }.count
                    let failedAfterKill = failures.filter { $0.start > kill }
                    reportFigure(
                        "two backends: \(results.count) requests in \(loadSeconds) s with \(clients) clients, "
                            + "\(failures.count) failed (\(inFlightAtKill) in flight at the SIGKILL), "
                            + "\(failedAfterKill.count) failed after it"
                    )
                    #expect(!first.isRunning)
                    #expect(
                        failures.count <= max(inFlightAtKill, 0),
                        "\(failures.count) failures, \(inFlightAtKill) in flight"
                    )
                    #expect(failedAfterKill.isEmpty, "requests begun after the kill failed: \(failedAfterKill)")
                    #expect(results.filter { $0.start > kill && $0.ok }.count > 10, "too few requests after the kill")
                    for _ in 0..<10 { #expect(try await send(port: port, "GET", "/hello").status == 200) }
                    #expect(second.isRunning)
                    #expect(crashSigns(in: second.log).isEmpty, "\(second.logTail)")
                }
            }
        }
    }

    // MARK: Soak

    @Test("32 kept client connections against /hello through nginx keep-alive: zero errors")
    func soakThroughKeepAlive() async throws {
        let duration = ProcessInfo.processInfo.environment["E2E_SOAK_SECONDS"].flatMap { Int($0) } ?? 20
        try await FastCGISetup.with(.nginxKeepAlive) { setup in
            let port = setup.port
            let outcome: SoakOutcome
            // wrk when installed; E2E_SOAK_CLIENT=own forces the built-in keep-alive clients.
            let forceOwn = ProcessInfo.processInfo.environment["E2E_SOAK_CLIENT"] == "own"
            if !forceOwn, let wrk = try? RequiredTool.locate("wrk") {
                outcome = try await SoakOutcome.runWrk(wrk, port: port, connections: 32, seconds: duration)
            } else {
                outcome = try await SoakOutcome.runOwnClients(port: port, connections: 32, seconds: duration)
            }
            reportFigure(
                "soak via \(outcome.tool): 32 connections × \(duration) s, \(outcome.requests) requests, "
                    + "\(Int(outcome.requestsPerSecond)) req/s, \(outcome.errors) errors \(outcome.detail)"
            )
            #expect(outcome.requests > duration * 100, "only \(outcome.requests) requests")
            #expect(outcome.errors == 0, "\(outcome.errors) errors: \(outcome.detail)")
            #expect(setup.app.isRunning)
            #expect(try await send(port: port, "GET", "/hello").status == 200)
        }
    }

    @Test("wrk's summary is read right")
    func wrkSummaryParsing() throws {
        let output = """
            Running 20s test @ http://127.0.0.1:4000/hello
              2 threads and 32 connections
              Thread Stats   Avg      Stdev     Max   +/- Stdev
                Latency     9.39ms    2.10ms  40.00ms   80.00%
                Req/Sec     1.71k   100.00     2.00k    70.00%
              68292 requests in 20.10s, 11.11MB read
              Socket errors: connect 0, read 2, write 0, timeout 3
              Non-2xx or 3xx responses: 4
            Requests/sec:   3397.61
            Transfer/sec:    565.98KB
            """
        let outcome = try SoakOutcome.parseWrk(output)
        #expect(outcome.requests == 68292)
        #expect(outcome.requestsPerSecond == 3397.61)
        #expect(outcome.errors == 9)
    }

    // MARK: Authorizer

    @Test("authorizer-example through mod_authnz_fcgi (apache/authorizer.conf)")
    func authorizer() async throws {
        let executable = try BuiltProducts.executable(named: "authorizer-example")
        let directory = try TemporaryDirectory(prefix: "swift-gateway-app-")
        defer { directory.remove() }
        let appPort = try PortAllocator.freePort()
        try await FastCGIAppProcess.with({
            try await FastCGIAppProcess.start(
                executable,
                socketPath: "",
                launch: .tcp(port: appPort),
                logFile: directory.path + "/app.log"
            )
        }) { app in
            let config = try ShippedConfig.load(
                "apache/authorizer.conf",
                socketDirectory: directory.path,
                replacements: [("fcgi://127.0.0.1:9001/", "fcgi://127.0.0.1:\(appPort)/")]
            )
            try await WebServerInstance.with({
                try await ApacheFastCGI.start(
                    name: "Apache mod_authnz_fcgi",
                    serverContext: config,
                    files: ["private/report.txt": "for alice only\n", "public.txt": "for everyone\n"]
                )
            }) { server in
                let port = server.port
                let logs = { "--- app:\n\(app.logTail)\n--- apache:\n\(server.errorLog.suffix(4096))" }
                let allowed = try await send(
                    port: port,
                    "GET",
                    "/private/report.txt",
                    headers: [("X-Token", "letmein")]
                )
                #expect(allowed.status == 200, "\(logs())")
                #expect(allowed.text == "for alice only\n")
                let refused = try await send(port: port, "GET", "/private/report.txt", headers: [("X-Token", "guess")])
                #expect(refused.status == 403, "\(logs())")
                #expect(!refused.text.contains("alice"))
                let anonymous = try await send(port: port, "GET", "/private/report.txt")
                #expect(anonymous.status == 403, "\(logs())")
                let open = try await send(port: port, "GET", "/public.txt")
                #expect(open.status == 200)
                #expect(open.text == "for everyone\n")
                #expect(crashSigns(in: app.log).isEmpty)
            }
        }
    }

    // MARK: spawn-fcgi

    @Test("the hello example started by spawn-fcgi behind nginx (fastcgi-unix-plain.conf)")
    func helloThroughSpawnFCGI() async throws {
        try await FastCGISetup.with(.nginx, program: "hello", launch: .spawnFCGI) { setup in
            let hello = try await send(port: setup.port, "GET", "/")
            #expect(hello.status == 200)
            #expect(hello.text == "Hello, world!")
            let echo = try await send(port: setup.port, "POST", "/echo", body: Array("ping".utf8))
            #expect(echo.status == 200)
            #expect(echo.text == "ping")
            let environ = try await send(port: setup.port, "GET", "/environ?q=1").environ()
            #expect(environ["QUERY_STRING"] == "q=1")
            #expect(environ["GATEWAY_INTERFACE"] == "CGI/1.1")
            #expect(try await send(port: setup.port, "GET", "/missing").status == 404)
        }
    }
}

/// When the backend was killed, in seconds since the load began.
final class KillTime: Sendable {
    let value = Mutex<Double?>(nil)
}

/// What a soak run measured.
struct SoakOutcome: Sendable {
    var tool: String
    var requests: Int
    var requestsPerSecond: Double
    var errors: Int
    /// Of `errors`, the answers that were not 2xx or 3xx (the rest are socket errors).
    var failedAnswers = 0
    var detail: String

    /// Runs wrk (HTTP/1.1, kept connections) and reads its summary. `script` (a wrk Lua file)
    /// changes the requests, e.g. to POSTs with a body.
    static func runWrk(
        _ wrk: String,
        port: Int,
        path: String = "/hello",
        script: String? = nil,
        connections: Int,
        seconds: Int
    ) async throws -> SoakOutcome {
        let result = try await ProcessRunner.run(
            wrk,
            arguments: [
                "-t", "2", "-c", String(connections), "-d", "\(seconds)s", "--timeout", "5s",
            ] + (script.map { ["-s", $0] } ?? []) + ["http://127.0.0.1:\(port)\(path)"],
            environment: ProcessRunner.inheritedEnvironment,
            timeout: .seconds(seconds + 60)
        )
        let output = String(decoding: result.standardOutput, as: UTF8.self)
        guard result.status == 0 else {
            throw TransportError("wrk failed (\(result.status)): \(output) \(result.errorText)")
        }
        return try parseWrk(output)
    }

    /// Parses wrk's summary: `N requests in …`, `Requests/sec: …`, `Socket errors: …`,
    /// `Non-2xx or 3xx responses: …`.
    static func parseWrk(_ output: String) throws -> SoakOutcome {
        var requests: Int?
        var rate: Double?
        var errors = 0
        var failedAnswers = 0
        var detail: [String] = []
        for rawLine in output.split(separator: "\n") {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            let words = line.split(separator: " ")
            if line.contains(" requests in "), let count = words.first.flatMap({ Int($0) }) {
                requests = count
            } else if line.hasPrefix("Requests/sec:"), let value = words.last.flatMap({ Double($0) }) {
                rate = value
            } else if line.hasPrefix("Socket errors:") {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                let numbers = line.dropFirst("Socket errors:".count).split(separator: ",").compactMap {
                    $0.split(separator: " ").last.flatMap { Int($0) }
                }
                errors += numbers.reduce(0, +)
                detail.append(line)
            } else if line.hasPrefix("Non-2xx or 3xx responses:"), let value = words.last.flatMap({ Int($0) }) {
                errors += value
                failedAnswers = value
                detail.append(line)
            }
        }
        guard let requests, let rate else { throw TransportError("cannot read wrk's summary:\n\(output)") }
        return SoakOutcome(
            tool: "wrk",
            requests: requests,
            requestsPerSecond: rate,
            errors: errors,
            failedAnswers: failedAnswers,
            detail: detail.joined(separator: "; ")
        )
    }

    /// Without wrk: `connections` threads, each sending requests on one kept connection.
    static func runOwnClients(port: Int, connections: Int, seconds duration: Int) async throws -> SoakOutcome {
        let start = ContinuousClock.now
        let end = start + .seconds(duration)
        let counts = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for _ in 0..<connections {
                group.addTask {
                    try await onDedicatedThread {
                        var done = 0
                        var failed = 0
                        var connection = try? HTTPStreamConnection(port: port)
                        while ContinuousClock.now < end {
                            guard let current = connection else {
                                failed += 1
                                connection = try? HTTPStreamConnection(port: port)
                                continue
                            }
                            var status = 0
                            let completed = try? current.exchange(
                                method: "GET",
                                target: "/hello",
                                keepAlive: true,
                                deadline: .now + .seconds(5),
                                onHead: { status = $0.status }
                            )
                            if completed == true && status == 200 {
                                done += 1
                            } else {
                                failed += 1
                                current.close()
                                connection = try? HTTPStreamConnection(port: port)
                            }
                        }
                        connection?.close()
                        return (done, failed)
                    }
                }
            }
            var total = (0, 0)
            for try await part in group { total = (total.0 + part.0, total.1 + part.1) }
            return total
        }
        let elapsed = seconds(since: start)
        return SoakOutcome(
            tool: "own keep-alive clients",
            requests: counts.0 + counts.1,
            requestsPerSecond: Double(counts.0) / elapsed,
            errors: counts.1,
            detail: ""
        )
    }
}
