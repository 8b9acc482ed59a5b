import FastCGI
import GatewayTestHarness
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FastCGIServerTests {
    /// Hostile input: never a crash or a hang, and a fresh connection is served afterwards.
    @Suite struct Robustness {
        @Test func garbageBytesCloseTheConnection() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                try await client.send(garbage(4096, seed: 5).map { $0 | 0x10 })  // version byte never 1
                try await client.waitForClose(timeout: .seconds(5))
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func httpRequestOnTheSocketIsClosedWithoutAnAnswer() async throws {
            try await withProbe { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                try socket.write(Array("GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n".utf8))
                let (bytes, eof) = socket.read(timeoutMilliseconds: 5000)
                #expect(eof, "connection left open")
                #expect(bytes.isEmpty, "answered an HTTP request: \(bytes.count) bytes")
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func wrongVersionClosesWithALogLine() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                records.record(.beginRequest, id: 1, [0, 1, 1, 0, 0, 0, 0, 0], version: 2)
                try await client.send(records.buffer)
                try await client.waitForClose(timeout: .seconds(5))
                try await probe.expectServesFreshConnection()
                #expect(probe.log.contains("unsupported protocol version 2"), "\(probe.log)")
            }
        }

        @Test func truncatedHeaderAndCutRecordsThenClose() async throws {
            try await withProbe { probe in
                // Half a header.
                let first = try await probe.connect()
                try await first.send([1, 1, 0])
                await first.close()
                // A record claiming 65535 bytes of params, 100 sent, then close.
                let second = try await probe.connect()
                var records = Records()
                records.begin(id: 1)
                try await second.send(records.bytes + [1, 4, 0, 1, 0xff, 0xff, 0, 0] + garbage(100, seed: 1))
                await second.close()
                // The same for STDIN, with the request running.
                let third = try await probe.connect()
                let head = FastCGITestRequest(
                    id: 1,
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: 65535)
                )
                try await third.send(head.encodedHead())
                try await third.send([1, 5, 0, 1, 0xff, 0xff, 0, 0] + garbage(1000, seed: 2))
                await third.close()
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func stdinBeforeBeginRequestIsIgnored() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                records.record(.stdin, id: 1, Array("too early".utf8))
                records.stdinEnd(id: 1)
                records.request(.post("/echo", body: Array("real".utf8), id: 1, keepConnection: true))
                try await client.send(records.buffer)
                let response = try await client.response(for: 1)
                response.expectCompleted()
                #expect(response.bodyString == "real")
                await client.close()
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func duplicateBeginRequestClosesTheConnectionWithALogLine() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                records.begin(id: 6, keepConnection: true)
                records.begin(id: 6, keepConnection: true)
                try await client.send(records.buffer)
                try await client.waitForClose(timeout: .seconds(5))
                try await probe.expectServesFreshConnection()
                #expect(probe.log.contains("already active"), "\(probe.log)")
            }
        }

        @Test func twoGiBDeclaredNameValueLengthIsRejected() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                records.begin(id: 1)
                // Name length 0x7fffffff (the 4-byte form's maximum), value length 1, a few bytes.
                records.record(.params, id: 1, [0xff, 0xff, 0xff, 0xff, 0x01] + Array("AAAA".utf8))
                let elapsed = try await measure {
                    try await client.send(records.buffer)
                    let leftover = try await client.waitForClose(timeout: .seconds(10))
                    #expect(leftover.allSatisfy { if case .endRequest = $0 { true } else { false } })
                }
                #expect(elapsed < .seconds(10))
                #expect((probe.residentKiB ?? 0) < 256 << 10)
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func fiftyThousandEmptyRecords() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                for index in 0..<50_000 {
                    switch index % 4 {
                    case 0: records.record(.stdin, id: 9)
                    case 1: records.record(.params, id: 9)
                    case 2: records.record(.data, id: 10)
                    default: records.record(.stdout, id: 11)
                    }
                }
                let elapsed = try await measure {
                    try await client.send(records.buffer)
                    let response = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                    #expect(response.bodyString == "Hello, world!")
                }
                #expect(elapsed < .seconds(10))
                await client.close()
                try await probe.expectServesFreshConnection()
            }
        }

        /// 100 000 params: over the default pair limit they are rejected; with the limits raised
        /// they are handled. Either way the server grows by less than 256 MiB.
        @Test(arguments: [false, true])
        func hundredThousandParams(raiseLimits: Bool) async throws {
            let flags = raiseLimits ? ["--max-params", "200000", "--max-params-bytes", "\(64 << 20)"] : []
            try await withProbe(flags) { probe in
                let before = probe.residentKiB ?? 0
                let client = try await probe.connect()
                var pairs = FastCGITestRequest.cgiParams(method: "GET", target: "/hello")
                for index in 0..<100_000 { pairs.append(("HTTP_X_P\(index)", "v\(index)")) }
                if raiseLimits {
                    try await client.send(FastCGITestRequest(id: 1, params: pairs).encoded())
                    let response = try await client.response(for: 1, timeout: .seconds(20))
                    response.expectCompleted()
                    #expect(response.bodyString == "Hello, world!")
                } else {
                    // The server may close while the params are still being written.
                    try? await client.send(FastCGITestRequest(id: 1, params: pairs).encoded())
                    let leftover = try await client.waitForClose(timeout: .seconds(10))
                    #expect(leftover.isEmpty)
                    #expect(probe.log.contains("name-value pairs"), "\(probe.log)")
                }
                let after = probe.residentKiB ?? 0
                print("100 000 params (limits raised: \(raiseLimits)): RSS \(before) KiB → \(after) KiB")
                #expect(after - before < 256 << 10)
                try await probe.expectServesFreshConnection()
            }
        }

        /// 1000 connections dropped in every state leak no file descriptors.
        @Test func thousandConnectionsDroppedInAssortedStatesLeakNoDescriptors() async throws {
            try await withProbe { probe in
                try await probe.expectServesFreshConnection()
                try await Task.sleep(for: .milliseconds(200))
                // Sockets only: event loops open a timerfd or eventfd lazily, which is no leak.
                let before = try #require(probe.openDescriptors)
                let baseline = before.values.filter { $0.hasPrefix("socket:") }.count
                let path = probe.socketPath
                var hello = Records()
                hello.request(.get("/hello", id: 1, keepConnection: true))
                var slow = Records()
                slow.request(.get("/slow?ms=50", id: 1))
                var big = Records()
                big.request(.get("/big?bytes=10000000", id: 1))
                let echoHead = FastCGITestRequest(
                    id: 1,
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: 100_000)
                ).encodedHead()
                var begin = Records()
                begin.begin(id: 3, keepConnection: true)
                let states: [[UInt8]] = [
                    [], [1, 1], begin.bytes, begin.bytes + [1, 4, 0, 3, 0, 20, 0, 0, 5], hello.bytes, slow.bytes,
                    big.bytes, Array(echoHead.readableBytesView) + [1, 5, 0, 1, 0x10, 0, 0, 0, 1, 2, 3],
                ]
                for index in 0..<1000 {
                    let socket = try RawSocket(unixPath: path)
                    let state = states[index % states.count]
                    if !state.isEmpty { try? socket.write(state) }
                    if index % 3 == 0 { socket.setResetOnClose() }
                    if index % 5 == 0 { socket.shutdownWrite() }
                    if index % 7 == 0 { _ = socket.read(timeoutMilliseconds: 5, limit: 100) }
                }
                try await probe.expectServesFreshConnection()
                func openSockets() -> Int {
                    probe.openDescriptors?.values.filter { $0.hasPrefix("socket:") }.count ?? -1
                }
                var now = openSockets()
                let deadline = ContinuousClock.now + .seconds(15)
                while now > baseline, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    now = openSockets()
                }
                print(
                    "open sockets: \(baseline) before 1000 dropped connections, \(now) after (\(before.count) fds before)"
                )
                let after = probe.openDescriptors ?? [:]
                let added = after.filter { before[$0.key] != $0.value }
                #expect(now <= baseline, "descriptor leak: \(baseline) → \(now): \(added)")
            }
        }

        @Test func clientsVanishingMidResponseDoNotKillTheServer() async throws {
            try await withProbe { probe in
                for round in 0..<20 {
                    let socket = try RawSocket(unixPath: probe.socketPath)
                    var records = Records()
                    records.request(
                        round.isMultiple(of: 2)
                            ? .get("/big?bytes=50000000", id: 1)
                            : .get("/stream?n=100&size=100000&delay_ms=1", id: 1)
                    )
                    try socket.write(records.bytes)
                    _ = socket.read(timeoutMilliseconds: 50, limit: 200_000)
                    if round % 3 == 0 { socket.setResetOnClose() }
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(probe.isRunning)
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func aClientThatNeverReadsA64MiBStreamDoesNotStallOthers() async throws {
            try await withProbe { probe in
                let before = probe.residentKiB ?? 0
                let stuck = try await probe.connect()
                try await stuck.send(FastCGITestRequest.get("/stream?n=1024&size=65536", id: 1))
                try await Task.sleep(for: .milliseconds(300))
                let elapsed = try await measure {
                    for _ in 0..<20 { try await probe.expectServesFreshConnection() }
                    let other = try await probe.connect()
                    let echo = try await other.perform(.post("/echo", body: [UInt8](repeating: 1, count: 1 << 20)))
                    #expect(echo.body.count == 1 << 20)
                    await other.close()
                }
                #expect(elapsed < .seconds(5))
                let after = probe.residentKiB ?? 0
                print("unread 64 MiB /stream: server RSS \(before) KiB → \(after) KiB")
                #expect(after - before < 32 << 10, "the unread stream is buffered in memory")
                await stuck.close()
                try await probe.expectServesFreshConnection()
            }
        }
    }
}
