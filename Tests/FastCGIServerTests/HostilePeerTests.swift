import FastCGI
import FastCGIServer
import Gateway
import GatewayTestHarness
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension RawSocket {
    /// Writes chunks from `next` until it returns nil, `timeout` ms pass, or the server has
    /// taken nothing for `stallMilliseconds` (it stopped reading). Returns the bytes it took.
    func writeUntilStalled(
        stallMilliseconds: Int32 = 2000,
        timeoutMilliseconds: Int = 60_000,
        _ next: () -> [UInt8]?
    ) -> Int {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        let started = ContinuousClock.now
        var sent = 0
        while ContinuousClock.now - started < .milliseconds(timeoutMilliseconds), let chunk = next() {
            var offset = 0
            while offset < chunk.count {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&poller, 1, stallMilliseconds) > 0 else { return sent }
                let written = chunk[offset...].withUnsafeBytes {
                    send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                if written < 0 {
                    if errno == EAGAIN { continue }
                    return sent
                }
                offset += written
                sent += written
            }
        }
        return sent
    }
}

/// Counts how often it runs; `/stream-then-fail` writes a head and a chunk, then throws;
/// `/echo` answers the body in one piece; the rest says hello.
struct CountingApp: GatewayApplication {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }
    let runs = Counter()

    nonisolated(nonsending) func respond(to environ: Environ) async throws -> GatewayResponse {
        runs.value.add(1, ordering: .relaxed)
        switch environ.path {
        case "/stream-then-fail":
            return GatewayResponse(
                headers: [.contentType: "text/plain"],
                body: GatewayResponseBody { writer in
                    try await writer.write(Array("first part\n".utf8))
                    struct Failure: Error {}
                    throw Failure()
                }
            )
        case "/fail":
            struct Failure: Error {}
            throw Failure()
        case "/deaf-sleep":
            // Ignores cancellation, as a database call or an uncancellable wait would (a
            // detached task's value does not take the waiter's cancellation).
            await Task.detached { try? await Task.sleep(for: .milliseconds(800)) }.value
            return .text("slept")
        case "/echo":
            return GatewayResponse(body: GatewayResponseBody(bytes: try await environ.input.collect(upTo: 1 << 26)))
        default:
            return .text("hello")
        }
    }
}

extension FastCGIServerTests {
    /// Issue 10's hostile peers: each test fails on the connection core before the state
    /// machine (checked) and passes with it.
    @Suite struct HostilePeers {
        /// Bytes that make the probe's RSS grow if each tiny STDIN slice pins its receive
        /// buffer: params that never end, 1-byte STDIN records between 64 KiB records of a
        /// type the decoder skips.
        @Test func tinyBodyChunksDoNotPinTheirReceiveBuffers() async throws {
            try await withProbe(["--params-timeout", "600", "--idle-timeout", "600"]) { probe in
                let before = try #require(probe.residentKiB)
                let socket = try RawSocket(unixPath: probe.socketPath)
                var head = Records()
                head.begin(id: 1)
                head.raw(type: RecordType.params.rawValue, id: 1, pairBytes("HTTP_X", "y"))
                try socket.write(head.bytes)
                var pair = Records()
                pair.raw(type: RecordType.endRequest.rawValue, id: 1, [UInt8](repeating: 0, count: 65535))
                pair.raw(type: RecordType.stdin.rawValue, id: 1, [1])
                let chunk = pair.bytes
                var left = 3000  // ~200 MB
                let sent = socket.writeUntilStalled {
                    left -= 1
                    return left >= 0 ? chunk : nil
                }
                try await Task.sleep(for: .milliseconds(500))
                let after = try #require(probe.residentKiB)
                print("tiny STDIN chunks: sent \(sent >> 20) MiB, RSS \(before) → \(after) KiB")
                #expect(sent > 32 << 20, "the server stopped reading early: \(sent) bytes")
                #expect(after - before < 64 << 10, "receive buffers pinned by 1-byte body slices")
            }
        }

        /// A peer that sends management records (each answered) and never reads the answers.
        @Test func unreadRepliesToManagementRecordsStopTheReading() async throws {
            try await withProbe { probe in
                let before = try #require(probe.residentKiB)
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                for _ in 0..<8192 { records.raw(type: 99, id: 0) }
                let chunk = records.bytes  // 64 KiB: 8192 records of 8 bytes
                var left = 256  // 2 million records
                let sent = socket.writeUntilStalled {
                    left -= 1
                    return left >= 0 ? chunk : nil
                }
                let after = try #require(probe.residentKiB)
                print("unread management replies: sent \(sent >> 10) KiB, RSS \(before) → \(after) KiB")
                #expect(sent < 8 << 20, "the server kept reading while its replies piled up")
                #expect(after - before < 32 << 10)
            }
        }

        /// Pipelined requests whose responses (and STDERR lines) are never read.
        @Test(arguments: ["/hello", "/error"])
        func unreadPipelinedResponsesStopTheReading(target: String) async throws {
            try await withProbe { probe in
                let before = try #require(probe.residentKiB)
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                for id: UInt16 in 1...100 { records.request(.get(target, id: id, keepConnection: true)) }
                let chunk = records.bytes
                var left = 1000  // 100,000 requests
                let sent = socket.writeUntilStalled {
                    left -= 1
                    return left >= 0 ? chunk : nil
                }
                let after = try #require(probe.residentKiB)
                print("unread pipelined \(target): sent \(sent >> 10) KiB, RSS \(before) → \(after) KiB")
                #expect(sent < chunk.count * 100, "the server kept reading while its responses piled up")
                #expect(after - before < 32 << 10)
            }
        }

        /// `--max-requests 4`, four requests declaring a body they never send: the slots come
        /// back after the stall timeout.
        @Test func requestsThatNeverSendTheirBodyDoNotHoldSlotsForever() async throws {
            try await withProbe(["--max-requests", "4", "--idle-timeout", "2", "--stall-timeout", "3"]) { probe in
                var holders: [RawSocket] = []
                for _ in 0..<4 {
                    let socket = try RawSocket(unixPath: probe.socketPath)
                    var records = Records()
                    let request = FastCGITestRequest(
                        params: FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: 1)
                    )
                    var head = request.encodedHead()
                    records.buffer.writeBuffer(&head)
                    try socket.write(records.bytes)
                    holders.append(socket)
                }
                try await Task.sleep(for: .milliseconds(500))
                let refused = try await probe.perform(.get("/hello"))
                #expect(refused.protocolStatus == .overloaded, "the four requests did not hold the slots")
                var served = false
                let started = ContinuousClock.now
                while !served, ContinuousClock.now - started < .seconds(15) {
                    try await Task.sleep(for: .milliseconds(500))
                    served = try await probe.perform(.get("/hello")).protocolStatus == .requestComplete
                }
                #expect(served, "slots still held after 15 s")
                #expect(ContinuousClock.now - started > .seconds(1))
                // The stalled requests got an answer each, with their FCGI_END_REQUEST.
                for socket in holders {
                    let answer = socket.read(timeoutMilliseconds: 5000)
                    #expect(splitRecords(answer.bytes).contains { $0.type == RecordType.endRequest.rawValue })
                }
            }
        }

        /// PARAMS fed one byte every 2 s (more often than the idle timeout) are cut by the
        /// params timeout.
        @Test func slowlorisParamsAreCutByTheParamsTimeout() async throws {
            try await withProbe(["--idle-timeout", "3", "--params-timeout", "4"]) { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var head = Records()
                head.begin(id: 1)
                // One PARAMS record announcing 200 bytes, then its content a byte at a time.
                let content = pairBytes("HTTP_X_SLOW", String(repeating: "s", count: 186))
                try socket.write(
                    head.bytes + recordHeader(type: RecordType.params.rawValue, id: 1, length: content.count)
                )
                let started = ContinuousClock.now
                var closed = false
                for byte in content.prefix(12) {
                    try await Task.sleep(for: .seconds(2))
                    if (try? socket.write([byte])) == nil {
                        closed = true
                        break
                    }
                    if socket.read(timeoutMilliseconds: 10).eof {
                        closed = true
                        break
                    }
                }
                let elapsed = ContinuousClock.now - started
                #expect(closed, "params still trickling after \(elapsed)")
                #expect(elapsed < .seconds(12))
                #expect(probe.log.contains("params did not complete"), "\(probe.logTail)")
            }
        }

        /// An abort and the params of the same request in one read: the application must not run.
        @Test(arguments: [false, true])
        func anAbortThenParamsInOneReadDoNotRunTheApplication(keepConnection: Bool) async throws {
            let app = CountingApp()
            let server = try await FastCGIInProcessServer.start(app)
            defer { Task { await server.stop() } }
            let socket = try RawSocket(unixPath: server.socketPath)
            var records = Records()
            records.begin(id: 1, keepConnection: keepConnection)
            records.record(.abortRequest, id: 1)
            records.params(id: 1, FastCGITestRequest.cgiParams(method: "GET", target: "/hello"))
            records.stdinEnd(id: 1)
            try socket.write(records.bytes)
            let answer = socket.read(timeoutMilliseconds: 2000)
            let parsed = splitRecords(answer.bytes)
            #expect(parsed.filter { $0.type == RecordType.endRequest.rawValue }.count == 1)
            #expect(!parsed.contains { $0.type == RecordType.stdout.rawValue && !$0.content.isEmpty })
            #expect(app.runs.value.load(ordering: .relaxed) == 0, "the aborted request's application ran")
            await server.stop()
        }

        /// A response the peer never reads: the write waits at most the stall timeout, then
        /// the connection closes.
        @Test func aWriteThatTheWebServerNeverDrainsHasADeadline() async throws {
            try await withProbe(["--stall-timeout", "2"]) { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                try socket.write(Records().with { $0.request(.get("/stream?n=1024&size=65536")) }.bytes)
                try await Task.sleep(for: .seconds(5))
                // Closed by now: what reaches us is what was queued, then EOF.
                let answer = socket.read(timeoutMilliseconds: 5000, limit: 32 << 20)
                #expect(answer.eof, "still streaming after the stall timeout")
                #expect(answer.bytes.count < 16 << 20)
                #expect(probe.log.contains("read none of its output"), "\(probe.logTail)")
            }
        }

        /// A connection flushing a finished response before it closes, to a peer that never
        /// reads: closed after the close timeout (the idle sweep skipped it).
        @Test func aFlushThenCloseThatNeverFlushesIsClosedAfterTheCloseTimeout() async throws {
            var limits = ServerLimits()
            limits.closeTimeoutSeconds = 2
            limits.stallTimeoutSeconds = 600
            limits.idleTimeoutSeconds = 2
            let server = try await FastCGIInProcessServer.start(CountingApp(), limits: limits)
            let socket = try RawSocket(unixPath: server.socketPath)
            let body = [UInt8](repeating: 7, count: 8 << 20)
            let request = FastCGITestRequest.post("/echo", body: body)
            let bytes = request.encoded()
            try socket.write(Array(bytes.readableBytesView))
            try await Task.sleep(for: .seconds(6))
            let answer = socket.read(timeoutMilliseconds: 5000, limit: 16 << 20)
            #expect(answer.eof)
            #expect(answer.bytes.count < body.count, "the whole response was still waiting to be flushed")
            #expect(server.log.contains("could not finish closing"), "\(server.log.entries.suffix(5))")
            await server.stop()
        }

        /// A task that outlives its connection gives its slot back when it returns (found by a
        /// review: the handler is removed right after the close, and its completion was lost).
        @Test func aTaskThatOutlivesItsConnectionFreesItsSlot() async throws {
            var limits = ServerLimits()
            limits.maxRequests = 1
            let server = try await FastCGIInProcessServer.start(CountingApp(), limits: limits)
            for _ in 0..<2 {
                let socket = try RawSocket(unixPath: server.socketPath)
                var records = Records()
                records.request(.get("/deaf-sleep", id: 1, keepConnection: false))
                try socket.write(records.bytes)
                try await Task.sleep(for: .milliseconds(100))
                socket.setResetOnClose()
            }
            // Both tasks are asleep or done; once the second returns, the one slot is free.
            try await Task.sleep(for: .seconds(2))
            let client = try await server.connect()
            let answer = try await client.perform(.get("/hello"))
            #expect(answer.protocolStatus == .requestComplete)
            #expect(answer.bodyString == "hello")
            await client.close()
            await server.stop()
        }

        /// A failure after the head: no empty STDOUT, no END_REQUEST, the connection closes.
        @Test func aFailureAfterTheHeadClosesWithoutEndingTheRequest() async throws {
            let server = try await FastCGIInProcessServer.start(CountingApp())
            let socket = try RawSocket(unixPath: server.socketPath)
            var records = Records()
            records.request(.get("/stream-then-fail", id: 1, keepConnection: true))
            records.begin(id: 2, keepConnection: true)  // multiplexed, its params never end
            try socket.write(records.bytes)
            let answer = socket.read(timeoutMilliseconds: 5000)
            #expect(answer.eof, "the connection stayed open")
            let parsed = splitRecords(answer.bytes)
            let stdout = parsed.filter { $0.type == RecordType.stdout.rawValue && $0.id == 1 }
            let text = String(decoding: stdout.flatMap(\.content), as: UTF8.self)
            #expect(text.contains("first part"))
            #expect(!stdout.contains { $0.content.isEmpty }, "STDOUT was ended")
            #expect(!parsed.contains { $0.type == RecordType.endRequest.rawValue }, "END_REQUEST was sent")
            // Before the head, a failure is a 500 with a normal end.
            let client = try await server.connect()
            let failed = try await client.perform(.get("/fail"))
            #expect(failed.status == 500)
            failed.expectCompleted(appStatus: 0)
            await client.close()
            await server.stop()
        }

        /// Values at the edge of their type must not trap: in the server's own arithmetic
        /// (ServerLimits as a program may set them), and the largest the flags accept.
        @Test func limitsAtTheEdgeOfTheirTypeDoNotTrap() async throws {
            var limits = ServerLimits()
            limits.maxRequestsPerConnection = .max
            limits.idleTimeoutSeconds = .max
            limits.paramsTimeoutSeconds = .max
            limits.stallTimeoutSeconds = .max
            limits.closeTimeoutSeconds = .max
            let server = try await FastCGIInProcessServer.start(CountingApp(), limits: limits)
            for _ in 0..<2 {
                let client = try await server.connect()
                let answer = try await client.perform(.get("/fail"))
                #expect(answer.status == 500)
                await client.close()
            }
            await server.stop()
            // The largest values the flags and variables accept (larger ones exit 64).
            let environment = [
                "GATEWAY_MAX_REQUESTS_PER_CONNECTION": "65535",
                "GATEWAY_IDLE_TIMEOUT": "31536000",
                "GATEWAY_PARAMS_TIMEOUT": "31536000",
                "GATEWAY_STALL_TIMEOUT": "31536000",
                "GATEWAY_CLOSE_TIMEOUT": "31536000",
            ]
            try await withProbe(environment: environment) { probe in
                try await probe.expectServesFreshConnection()
                try await Task.sleep(for: .milliseconds(500))
                try await probe.expectServesFreshConnection()
            }
        }
    }
}

extension Records {
    func with(_ build: (inout Records) -> Void) -> Records {
        var copy = self
        build(&copy)
        return copy
    }
}

/// A bare record header, its content to follow separately.
func recordHeader(type: UInt8, id: UInt16, length: Int) -> [UInt8] {
    [1, type, UInt8(id >> 8), UInt8(id & 0xff), UInt8(length >> 8), UInt8(length & 0xff), 0, 0]
}
