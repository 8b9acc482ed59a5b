import FastCGI
import FastCGIServer
import Foundation
import GatewayTestHarness
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

        @Test func duringShutdownANewRequestOnABusyConnectionIsRefusedAsOverloaded() async throws {
            // Only a multiplexing web server can send one; served, a steady stream of them
            // would keep the connection busy until the grace period cuts it mid-request.
            let probe = try await FastCGIAppProcess.startProbe()
            defer { Task { await probe.cleanUp() } }
            let client = try await probe.connect()
            try await client.send(FastCGITestRequest.get("/slow?ms=1000", id: 1, keepConnection: true))
            try await Task.sleep(for: .milliseconds(200))
            probe.send(signal: SIGTERM)
            try await Task.sleep(for: .milliseconds(300))
            try await client.send(FastCGITestRequest.get("/hello", id: 2, keepConnection: true))
            let refused = try await client.response(for: 2, timeout: .seconds(5))
            #expect(refused.protocolStatus == .overloaded)
            let slow = try await client.response(for: 1, timeout: .seconds(5))
            slow.expectCompleted()
            #expect(slow.bodyString == "done")
            #expect(await probe.waitForExit(timeout: .seconds(5)) == .exited(0), "log:\n\(probe.log)")
            #expect(probe.log.contains("refusing request 2: shutting down"), "\(probe.log)")
        }

        /// nginx keeps an upstream connection only when FCGI_END_REQUEST ends what it read: a
        /// kept connection that closes during shutdown gets a record after its last
        /// END_REQUEST, in the same write, so that nginx does not send its next request on a
        /// connection that is closing (a 502 for a POST). Not for Apache, which checks a pooled
        /// connection before reusing it and would read that record as the next answer.
        @Test(arguments: [("nginx/1.22.1", true), ("Apache/2.4.57 (Debian)", false)])
        func duringShutdownAKeptConnectionIsRetiredWithItsLastResponse(
            serverSoftware: String,
            trailingRecord: Bool
        ) async throws {
            let probe = try await FastCGIAppProcess.startProbe()
            defer { Task { await probe.cleanUp() } }
            let socket = try RawSocket(unixPath: probe.socketPath)
            var records = Records()
            var request = FastCGITestRequest.get("/slow?ms=2000", id: 1, keepConnection: true)
            request.params.append(("SERVER_SOFTWARE", serverSoftware))
            records.request(request)
            try socket.write(records.bytes)
            try await Task.sleep(for: .milliseconds(200))
            probe.send(signal: SIGTERM)
            let (bytes, eof) = socket.read(timeoutMilliseconds: 5000)
            #expect(eof, "the connection stayed open after its last response")
            let replies = splitRecords(bytes)
            let body = replies.filter { $0.type == RecordType.stdout.rawValue }.flatMap(\.content)
            #expect(String(decoding: body, as: UTF8.self).hasSuffix("done"))
            let end = "\(RecordType.endRequest.rawValue)/1/8"
            let retired = "\(RecordType.getValuesResult.rawValue)/0/0"
            let tail = replies.suffix(trailingRecord ? 2 : 1).map { "\($0.type)/\($0.id)/\($0.content.count)" }
            #expect(tail == (trailingRecord ? [end, retired] : [end]), "\(serverSoftware): \(tail)")
            #expect(await probe.waitForExit(timeout: .seconds(5)) == .exited(0), "log:\n\(probe.log)")
        }

        /// A kept connection idle at SIGTERM stays open a moment (a web server may be sending
        /// on it already), then closes without a word; the process exits soon after.
        @Test func duringShutdownAnIdleKeptConnectionClosesAfterAMoment() async throws {
            let probe = try await FastCGIAppProcess.startProbe()
            defer { Task { await probe.cleanUp() } }
            let client = try await probe.connect()
            let first = try await client.perform(.get("/hello", keepConnection: true))
            first.expectCompleted()
            let start = ContinuousClock.now
            probe.send(signal: SIGTERM)
            let extra = try await client.waitForClose(timeout: .seconds(5))
            #expect(extra.isEmpty, "records on an idle connection: \(extra)")
            #expect(await probe.waitForExit(timeout: .seconds(5)) == .exited(0), "log:\n\(probe.log)")
            let took = ContinuousClock.now - start
            #expect(took < .seconds(3), "an idle connection held the shutdown for \(took)")
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
                let backlog = try await listenBacklog(ofUnixSocket: probe.socketPath)
                #expect(backlog == 1024)
            }
            try await withProbe(["--socket-mode", "0600"]) { probe in
                var status = stat()
                #expect(stat(probe.socketPath, &status) == 0)
                #expect(status.st_mode & 0o7777 == 0o600)
            }
        }

        /// A web server worker that connects while the socket still has the umask's mode and
        /// root's group is refused (nginx answers 502, Apache 503) by a server that looks ready:
        /// the socket must accept nothing before its mode and group are applied.
        @Test func socketAcceptsOnlyOnceItsPermissionsAreApplied() async throws {
            let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
            defer { directory.remove() }
            let path = directory.path + "/app.sock"
            for attempt in 0..<20 {
                let watching = ContinuousClock.now
                // Spins from its own thread: the mode of the file when it first accepted a connection.
                let watcher = Task {
                    try await onDedicatedThread { () -> mode_t? in
                        while ContinuousClock.now - watching < .seconds(20) {
                            guard PortAllocator.isListening(unixSocket: path) else { continue }
                            var status = stat()
                            return lstat(path, &status) == 0 ? status.st_mode & 0o7777 : nil
                        }
                        return nil
                    }
                }
                let probe = try await FastCGIAppProcess.startProbe(socketPath: path)
                let mode = try await watcher.value
                #expect(
                    mode == 0o660,
                    "attempt \(attempt): accepted with mode \(mode.map { String($0, radix: 8) } ?? "none")"
                )
                #expect(await probe.stop() == .exited(0))
                await probe.cleanUp()
                #expect(access(path, F_OK) != 0, "the stopped server left its socket file")
            }
        }

        /// A live server whose backlog is full refuses a connect with `EAGAIN`: only
        /// `ECONNREFUSED` proves a socket stale, so its file must survive and the start fail
        /// at once (a blocking `connect` would wait for that server instead).
        @Test func aLiveSocketThatDoesNotAcceptNowIsNotTakenOver() async throws {
            let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
            defer { directory.remove() }
            let path = directory.path + "/app.sock"
            let address = try SocketAddress(unixDomainSocketPath: path)
            let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(listener) }
            #expect(address.withSockAddr { bind(listener, $0, socklen_t($1)) } == 0)
            #expect(listen(listener, 0) == 0)
            var pending: [Int32] = []
            defer { for fd in pending { close(fd) } }
            var refusal: Int32 = 0
            for _ in 0..<64 {
                let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                pending.append(fd)
                if address.withSockAddr({ connect(fd, $0, socklen_t($1)) }) != 0 {
                    refusal = errno
                    break
                }
            }
            try #require(refusal == EAGAIN, "could not fill the backlog: errno \(refusal)")
            var before = stat()
            #expect(lstat(path, &before) == 0)

            let probe = try await FastCGIAppProcess.startProbe(socketPath: path, waitUntilReady: false)
            let status = await probe.waitForExit(timeout: .seconds(20))
            #expect(status != nil && status != .exited(0), "\(String(describing: status))\n\(probe.log)")
            #expect(probe.log.contains("not replacing it"), "\(probe.log)")
            await probe.cleanUp()
            var after = stat()
            #expect(lstat(path, &after) == 0 && after.st_ino == before.st_ino, "the live server's socket was replaced")
            let accepted = accept(listener, nil, nil)
            #expect(accepted >= 0, "the live server's socket no longer takes connections")
            if accepted >= 0 { close(accepted) }
        }

        @Test func aSymlinkAtTheSocketPathIsNeverFollowed() async throws {
            let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
            defer { directory.remove() }
            let victim = directory.path + "/victim"
            let path = directory.path + "/app.sock"
            #expect(FileManager.default.createFile(atPath: victim, contents: Data("keep me".utf8)))
            #expect(chmod(victim, 0o600) == 0)
            #expect(symlink(victim, path) == 0)
            let probe = try await FastCGIAppProcess.startProbe(
                ["--socket-mode", "0666", "--socket-group", "\(getgid())"],
                socketPath: path,
                waitUntilReady: false
            )
            let status = await probe.waitForExit(timeout: .seconds(20))
            #expect(status != nil && status != .exited(0), "\(String(describing: status))")
            #expect(probe.log.contains("is not a socket"), "\(probe.log)")
            await probe.cleanUp()
            var target = stat()
            #expect(stat(victim, &target) == 0 && target.st_mode & 0o7777 == 0o600)
            #expect(FileManager.default.contents(atPath: victim) == Data("keep me".utf8))
        }

        @Test func socketModeAndGroupComeOutExactlyAsAsked() async throws {
            for mode: mode_t in [0o604, 0o660, 0o777] {
                let group = getgid()
                try await withProbe(["--socket-mode", String(mode, radix: 8), "--socket-group", "\(group)"]) { probe in
                    var status = stat()
                    #expect(lstat(probe.socketPath, &status) == 0)
                    #expect(status.st_mode & S_IFMT == S_IFSOCK)
                    #expect(status.st_mode & 0o7777 == mode, "mode \(String(status.st_mode & 0o7777, radix: 8))")
                    #expect(status.st_gid == group)
                    try await probe.expectServesFreshConnection()
                }
            }
        }

        @Test func aPathTooLongForASocketAddressIsRefusedClearly() async throws {
            let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
            defer { directory.remove() }
            let path = directory.path + "/" + String(repeating: "s", count: 110)
            let probe = try await FastCGIAppProcess.startProbe(socketPath: path, waitUntilReady: false)
            let status = await probe.waitForExit(timeout: .seconds(20))
            #expect(status != nil && status != .exited(0), "\(String(describing: status))")
            #expect(probe.log.contains("holds at most 103"), "\(probe.log)")
            await probe.cleanUp()
        }

        @Test func aPathThatIsNotASocketIsNeverReplaced() async throws {
            let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
            defer { directory.remove() }
            let path = directory.path + "/app.sock"
            #expect(
                FileManager.default.createFile(
                    atPath: path,
                    contents: Data("keep me".utf8)
                )
            )
            let probe = try await FastCGIAppProcess.startProbe(socketPath: path, waitUntilReady: false)
            let status = await probe.waitForExit(timeout: .seconds(20))
            #expect(status != nil && status != .exited(0), "\(String(describing: status))")
            #expect(probe.log.contains("exists and is not a socket"), "\(probe.log)")
            #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
            await probe.cleanUp()
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

        @Test func webServerAddressesMatchWhateverTheirSpelling() throws {
            let list = try #require(WebServerAllowList("127.0.0.1, 0:0:0:0:0:0:0:1"))
            #expect(list.allows(try SocketAddress(ipAddress: "127.0.0.1", port: 9000)))
            // A server on `::` sees IPv4 web servers as IPv4-mapped IPv6 addresses.
            #expect(list.allows(try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 9000)))
            #expect(list.allows(try SocketAddress(ipAddress: "::1", port: 9000)))
            #expect(!list.allows(try SocketAddress(ipAddress: "127.0.0.2", port: 9000)))
            #expect(!list.allows(try SocketAddress(ipAddress: "::ffff:127.0.0.2", port: 9000)))
            #expect(!list.allows(try SocketAddress(ipAddress: "::2", port: 9000)))
            #expect(list.allows(try SocketAddress(unixDomainSocketPath: "/tmp/any.sock")))
            #expect(WebServerAllowList(" , ") == nil)
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
            // spawn-fcgi listens with a backlog of 1024; adopting the socket must not shrink it.
            let backlog = try await listenBacklog(ofUnixSocket: process.socketPath)
            #expect(backlog == 1024)
            #expect(await process.stop() == .exited(0))
        }
    }
}

/// The backlog a Unix socket listens with, as `ss` (iproute2) shows it.
func listenBacklog(ofUnixSocket path: String) async throws -> Int? {
    let result = try await ProcessRunner.run(
        try RequiredTool.locate("ss"),
        arguments: ["-xlH", "src", path],
        environment: ProcessRunner.inheritedEnvironment(overriding: [:]),
        timeout: .seconds(10)
    )
    // u_str LISTEN 0 1024 /path inode * 0: Recv-Q, then the backlog as Send-Q.
    let fields = String(decoding: result.standardOutput, as: UTF8.self).split(
        separator: " ",
        omittingEmptySubsequences: true
    )
    return fields.count > 3 ? Int(fields[3]) : nil
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
