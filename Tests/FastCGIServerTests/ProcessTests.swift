import FastCGI
import Foundation
import GatewayTesting
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP port that was free a moment ago (bound to port 0, then released).
func freeTCPPort(host: String = "127.0.0.1") async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: host, port: 0).get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    return port
}

/// Connects over TCP, retrying until the server accepts (at most `timeout`).
func connectTCP(host: String, port: Int, timeout: Duration = .seconds(20)) async throws -> FastCGITestClient {
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            return try await FastCGITestClient.connect(host: host, port: port)
        } catch {
            if ContinuousClock.now >= deadline { throw error }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Whether the loopback interface has IPv6 (`::1`).
let hasIPv6Loopback: Bool = {
    guard let table = fopen("/proc/net/if_inet6", "r") else { return false }
    defer { fclose(table) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, table) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("00000000000000000000000000000001") { return true }
    }
    return false
}()

extension FastCGIServerTests {
    /// The process: signals, the socket file, TCP, and independent FastCGI peers.
    @Suite struct Process {
        @Test func sigtermLetsTheRequestInFlightFinishRefusesNewConnectionsAndExitsZero() async throws {
            let probe = try await FastCGIAppProcess.startProbe()
            defer { Task { await probe.cleanUp() } }
            let client = try await probe.connect()
            try await client.send(FastCGITestRequest.get("/slow?ms=1500", id: 1))
            try await Task.sleep(for: .milliseconds(300))
            probe.send(signal: SIGTERM)
            try await Task.sleep(for: .milliseconds(300))
            let error: Int32
            switch PortAllocator.connect(unixSocket: probe.socketPath) {
            case .success(let fd):
                close(fd)
                error = 0
            case .failure(let failure):
                error = failure.code
            }
            #expect(error == ECONNREFUSED || error == ENOENT, "a new connection was accepted during shutdown")
            let response = try await client.response(for: 1, timeout: .seconds(5))
            response.expectCompleted()
            #expect(response.bodyString == "done")
            let status = await probe.waitForExit(timeout: .seconds(5))
            #expect(status == .exited(0), "log:\n\(probe.log)")
            #expect(access(probe.socketPath, F_OK) != 0, "socket file left behind")
        }

        /// PROBE.md: the harness SIGKILLs 5 s after SIGTERM, so the probe gives requests in
        /// flight 4 s, then closes what is left and exits 0 by itself.
        @Test func sigtermWithARequestThatWillNotFinishStillExitsZeroWithinFiveSeconds() async throws {
            let probe = try await FastCGIAppProcess.startProbe()
            defer { Task { await probe.cleanUp() } }
            let client = try await probe.connect()
            try await client.send(FastCGITestRequest.get("/slow?ms=30000", id: 1))
            try await Task.sleep(for: .milliseconds(200))
            let start = ContinuousClock.now
            probe.send(signal: SIGTERM)
            let status = await probe.waitForExit(timeout: .seconds(5))
            #expect(status == .exited(0), "log:\n\(probe.log)")
            #expect(ContinuousClock.now - start < .seconds(5))
            #expect(probe.log.contains("still busy after the grace period"), "\(probe.log)")
        }

        @Test func staleSocketIsReplacedButALiveOneIsNotTakenOver() async throws {
            let first = try await FastCGIAppProcess.startProbe()
            let path = first.socketPath
            // A live server's socket: a second instance must fail clearly and leave it alone.
            let second = try await FastCGIAppProcess.startProbe(socketPath: path, waitUntilReady: false)
            let status = await second.waitForExit(timeout: .seconds(20))
            #expect(status != nil && status != .exited(0), "second instance: \(String(describing: status))")
            #expect(second.log.contains("already listening"), "\(second.log)")
            try await first.expectServesFreshConnection()
            // A SIGKILLed server leaves a stale socket file; a restart replaces it.
            first.send(signal: SIGKILL)
            _ = await first.waitForExit(timeout: .seconds(5))
            #expect(access(path, F_OK) == 0, "the killed server's socket file should still exist")
            let third = try await FastCGIAppProcess.startProbe(socketPath: path)
            try await third.expectServesFreshConnection()
            await third.stop()
            await second.cleanUp()
            await third.cleanUp()
            await first.cleanUp()
        }

        @Test func socketModeDefaultsTo0660AndIsConfigurable() async throws {
            try await withProbe { probe in
                var status = stat()
                #expect(stat(probe.socketPath, &status) == 0)
                #expect(status.st_mode & S_IFMT == S_IFSOCK)
                #expect(status.st_mode & 0o7777 == 0o660, "mode \(String(status.st_mode & 0o7777, radix: 8))")
            }
            try await withProbe(["--socket-mode", "0600"]) { probe in
                var status = stat()
                #expect(stat(probe.socketPath, &status) == 0)
                #expect(status.st_mode & 0o7777 == 0o600)
            }
        }

        @Test func tcpOnIPv4Loopback() async throws {
            let port = try await freeTCPPort()
            // Not waited for here: connectTCP retries until the server accepts.
            let probe = try await FastCGIAppProcess.startProbe(launch: .tcp(port: port), waitUntilReady: false)
            defer { Task { await probe.cleanUp() } }
            let client = try await connectTCP(host: "127.0.0.1", port: port)
            let response = try await client.perform(.get("/hello"))
            #expect(response.bodyString == "Hello, world!")
            #expect(await probe.stop() == .exited(0))
        }

        @Test(.enabled(if: hasIPv6Loopback)) func tcpOnIPv6Loopback() async throws {
            let port = try await freeTCPPort(host: "::1")
            // Not waited for here: readiness is checked on 127.0.0.1, and connectTCP retries.
            let probe = try await FastCGIAppProcess.startProbe(
                ["--host", "::1"],
                launch: .tcp(port: port),
                waitUntilReady: false
            )
            defer { Task { await probe.cleanUp() } }
            let client = try await connectTCP(host: "::1", port: port)
            let response = try await client.perform(.post("/echo", body: Array("six".utf8)))
            #expect(response.bodyString == "six")
            #expect(await probe.stop() == .exited(0))
        }

        @Test func webServerAddressAllowList() async throws {
            for (allowed, served) in [("127.0.0.2", false), ("127.0.0.2, 127.0.0.1", true)] {
                let port = try await freeTCPPort()
                // Not waited for here: a readiness connection would be one more refused peer in the log.
                let probe = try await FastCGIAppProcess.startProbe(
                    environment: ["FCGI_WEB_SERVER_ADDRS": allowed],
                    launch: .tcp(port: port),
                    waitUntilReady: false
                )
                let client = try await connectTCP(host: "127.0.0.1", port: port)
                if served {
                    let response = try await client.perform(.get("/hello"))
                    #expect(response.bodyString == "Hello, world!")
                } else {
                    try? await client.send(FastCGITestRequest.get("/hello"))
                    let elapsed = try await measure {
                        let events = try await client.waitForClose(timeout: .seconds(5))
                        #expect(events.isEmpty, "a refused peer got an answer")
                    }
                    #expect(elapsed < .seconds(1))
                    #expect(probe.log.contains("FCGI_WEB_SERVER_ADDRS"), "\(probe.log)")
                }
                #expect(await probe.stop() == .exited(0))
                await probe.cleanUp()
            }
        }

        /// libfcgi's `cgi-fcgi`, an independent FastCGI client, talks to the server.
        @Test func cgiFcgiIndependentClient() async throws {
            try await withProbe { probe in
                func cgiFcgi(_ environment: [String: String], stdin: [UInt8] = []) async throws -> CGIResponse {
                    let result = try await ProcessRunner.run(
                        "/usr/bin/cgi-fcgi",
                        arguments: ["-bind", "-connect", probe.socketPath],
                        environment: ProcessRunner.inheritedEnvironment(overriding: environment),
                        input: .bytes(stdin),
                        timeout: .seconds(10)
                    )
                    let output = String(decoding: result.standardOutput, as: UTF8.self)
                    #expect(result.status == 0, "cgi-fcgi: exit status \(result.status) \(output)\(result.errorText)")
                    return CGIResponse(parsing: result.standardOutput)
                }
                let hello = try await cgiFcgi([
                    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/hello", "REQUEST_URI": "/hello",
                    "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
                ])
                #expect(hello.status == 200)
                #expect(String(decoding: hello.body, as: UTF8.self) == "Hello, world!")
                let body = Array("posted through cgi-fcgi".utf8)
                let echo = try await cgiFcgi(
                    [
                        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/echo", "REQUEST_URI": "/echo",
                        "QUERY_STRING": "", "CONTENT_LENGTH": "\(body.count)",
                        "CONTENT_TYPE": "application/octet-stream",
                    ],
                    stdin: body
                )
                #expect(echo.status == 200)
                #expect(echo.body == body)
                let missing = try await cgiFcgi(["REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/nope"])
                #expect(missing.status == 404)
            }
        }

        /// One event-loop thread per CPU the process may use: pinned by taskset (as a benchmark
        /// or systemd's `CPUAffinity=` pins it), one loop; `--threads` and `GATEWAY_THREADS` override.
        @Test func eventLoopThreadsFollowTheCPUAffinityUnlessSet() async throws {
            let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
            defer { directory.remove() }
            // spawn-fcgi execs taskset, which execs the probe: one PID, the socket on fd 0.
            let pinnedProbe = {
                try await FastCGIAppProcess.start(
                    "/usr/bin/taskset",
                    socketPath: directory.path + "/fcgi.sock",
                    launch: .spawnFCGI,
                    extraArguments: ["-c", "0", try BuiltProducts.executable(named: "gateway-probe")],
                    logFile: directory.path + "/server.log"
                )
            }
            try await FastCGIAppProcess.with(pinnedProbe) { pinned in
                // spawn-fcgi bound the socket before the probe started: wait for an answer.
                let client = try await pinned.connect()
                #expect(try await client.perform(.get("/hello")).bodyString == "Hello, world!")
                #expect(eventLoopThreads(of: pinned.pid) == 1, "\(pinned.log)")
            }
            try await withProbe(["--threads", "4"]) { probe in
                try await probe.expectServesFreshConnection()
                #expect(eventLoopThreads(of: probe.pid) == 4)
            }
            try await withProbe(environment: ["GATEWAY_THREADS": "3"]) { probe in
                try await probe.expectServesFreshConnection()
                #expect(eventLoopThreads(of: probe.pid) == 3)
            }
        }

        /// `spawn-fcgi -n` execs the app with the listening socket on fd 0: FastCGI mode.
        @Test func spawnFcgiInheritedListeningSocket() async throws {
            let process = try await FastCGIAppProcess.startProbe(launch: .spawnFCGI)
            defer { Task { await process.cleanUp() } }
            let client = try await process.connect()
            let response = try await client.perform(.get("/hello"))
            #expect(response.bodyString == "Hello, world!")
            #expect(process.log.contains("fd 0"), "\(process.log)")
            #expect(await process.stop() == .exited(0))
        }
    }
}

/// The SwiftNIO event-loop threads (named `NIO-ELT-…`) of process `pid`.
func eventLoopThreads(of pid: pid_t) -> Int {
    let tasks = "/proc/\(pid)/task"
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return 0 }
    return entries.filter { task in
        let name = (try? String(contentsOfFile: "\(tasks)/\(task)/comm", encoding: .utf8)) ?? ""
        return name.hasPrefix("NIO-ELT-")
    }.count
}
