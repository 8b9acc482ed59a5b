import FastCGI
import GatewayTestHarness
import NIOCore
import Synchronization
import Testing

extension FastCGIServerTests {
    /// PROBE.md's concurrency requirements.
    @Suite struct Concurrency {
        @Test func sixtyFourKeptConnectionsTimesFiftyRequests() async throws {
            try await withProbe { probe in
                try await withThrowingTaskGroup { group in
                    for connection in 0..<64 {
                        group.addTask {
                            let client = try await probe.connect()
                            for index in 0..<50 {
                                let id = UInt16(index % 4 + 1)
                                if index.isMultiple(of: 2) {
                                    let response = try await client.perform(
                                        .get("/hello", id: id, keepConnection: true)
                                    )
                                    #expect(response.bodyString == "Hello, world!")
                                } else {
                                    let body = Array("c\(connection)-r\(index)".utf8)
                                    let response = try await client.perform(
                                        .post("/echo", body: body, id: id, keepConnection: true)
                                    )
                                    #expect(response.body == body)
                                }
                            }
                            await client.close()
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }

        @Test func thirtyTwoClientsTimesTwentyFiveFreshConnections() async throws {
            try await withProbe { probe in
                try await withThrowingTaskGroup { group in
                    for clientIndex in 0..<32 {
                        group.addTask {
                            for index in 0..<25 {
                                let body = Array("client \(clientIndex) connection \(index)".utf8)
                                let client = try await probe.connect()
                                let response = try await client.perform(.post("/echo", body: body))
                                #expect(response.body == body)
                                try await client.waitForClose(timeout: .seconds(5))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func concurrentEchoesAreCrosstalkFree() async throws {
            try await withProbe { probe in
                try await withThrowingTaskGroup { group in
                    // 16 connections, each multiplexing 8 echoes whose STDIN records interleave.
                    for connection in 0..<16 {
                        group.addTask {
                            let client = try await probe.connect()
                            var bodies: [UInt16: [UInt8]] = [:]
                            var records = Records()
                            for id: UInt16 in 1...8 {
                                let body = garbage(20_000 + Int(id) * 1000, seed: connection * 100 + Int(id))
                                bodies[id] = body
                                var head = FastCGITestRequest(
                                    id: id,
                                    keepConnection: true,
                                    params: FastCGITestRequest.cgiParams(
                                        method: "POST",
                                        target: "/echo",
                                        bodyLength: body.count
                                    )
                                ).encodedHead()
                                records.buffer.writeBuffer(&head)
                            }
                            for offset in stride(from: 0, to: 40_000, by: 3000) {
                                for id: UInt16 in 1...8 where offset < bodies[id]!.count {
                                    let body = bodies[id]!
                                    records.record(.stdin, id: id, Array(body[offset..<min(offset + 3000, body.count)]))
                                }
                            }
                            for id: UInt16 in 1...8 { records.stdinEnd(id: id) }
                            try await client.send(records.buffer)
                            for id: UInt16 in 1...8 {
                                let response = try await client.response(for: id)
                                response.expectCompleted()
                                #expect(response.body == bodies[id], "connection \(connection) request \(id)")
                            }
                            await client.close()
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }

        @Test func eightParallelSlowRequestsFinishWithinThreeSeconds() async throws {
            try await withProbe { probe in
                let elapsed = try await measure {
                    try await withThrowingTaskGroup { group in
                        for _ in 0..<8 {
                            group.addTask {
                                let response = try await probe.perform(.get("/slow?ms=1000"))
                                #expect(response.bodyString == "done")
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                #expect(elapsed < .seconds(3), "\(elapsed)")
            }
        }
    }

    /// Memory stays flat for 1 GiB each way.
    @Suite struct Backpressure {
        /// Samples the server's RSS every 50 ms while `body` runs; returns the largest growth in KiB.
        static func peakGrowth(
            of probe: FastCGIAppProcess,
            during body: () async throws -> Void
        ) async throws -> (
            baseline: Int, peak: Int
        ) {
            let baseline = probe.residentKiB ?? 0
            let peak = Atomic<Int>(baseline)
            let sampler = Task {
                while !Task.isCancelled {
                    if let now = probe.residentKiB { peak.max(now, ordering: .relaxed) }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            defer { sampler.cancel() }
            try await body()
            sampler.cancel()
            _ = await sampler.value
            return (baseline, peak.load(ordering: .relaxed))
        }

        @Test func oneGiBDownloadReadSlowlyKeepsServerMemoryFlat() async throws {
            try await withProbe { probe in
                let total = 1 << 30
                let client = try await probe.connect()
                let (baseline, peak) = try await Self.peakGrowth(of: probe) {
                    try await client.send(FastCGITestRequest.get("/big?bytes=\(total)", id: 1))
                    var received = 0
                    var records = 0
                    var sawEnd = false
                    while !sawEnd {
                        for event in try await client.nextEvents(for: 1) {
                            switch event {
                            case .stdout(_, let bytes):
                                received += bytes.readableBytes
                                records += 1
                                // A slow reader: pause now and then, so the server must wait for the socket.
                                if records.isMultiple(of: 256) { try await Task.sleep(for: .milliseconds(20)) }
                            case .endRequest(_, let appStatus, let status):
                                #expect(appStatus == 0 && status == .requestComplete)
                                sawEnd = true
                            default:
                                break
                            }
                        }
                    }
                    #expect(received > total && received < total + 1000, "head plus \(total) bytes, got \(received)")
                }
                print("1 GiB /big read slowly: server RSS \(baseline) KiB, peak \(peak) KiB (+\(peak - baseline) KiB)")
                #expect(peak - baseline < 64 << 10)
                try await client.waitForClose()
            }
        }

        @Test func oneGiBUploadKeepsServerMemoryFlat() async throws {
            try await withProbe(environment: ["GATEWAY_LOG_LEVEL": "debug"]) { probe in
                let total = 1 << 30
                let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
                let client = try await probe.connect()
                let (baseline, peak) = try await Self.peakGrowth(of: probe) {
                    let head = FastCGITestRequest(
                        id: 1,
                        params: FastCGITestRequest.cgiParams(method: "POST", target: "/count", bodyLength: total)
                    )
                    try await client.send(head.encodedHead())
                    for sent in 0..<(total / chunk.count) {
                        do {
                            try await client.sendStdin(chunk, requestID: 1, recordSize: 65528)
                        } catch {
                            // Say what the server answered before it closed, if anything.
                            let answer = try? await client.response(for: 1, timeout: .seconds(1))
                            Issue.record(
                                "send failed after \(sent) MiB: \(error); server answered: \(String(describing: answer?.stdout.count)) bytes, \(String(decoding: answer?.stdout ?? [], as: UTF8.self))"
                            )
                            throw error
                        }
                    }
                    try await client.sendStdinEnd(requestID: 1)
                    let response = try await client.response(for: 1, timeout: .seconds(30))
                    response.expectCompleted()
                    #expect(response.bodyString == String(total))
                }
                print("1 GiB upload to /count: server RSS \(baseline) KiB, peak \(peak) KiB (+\(peak - baseline) KiB)")
                #expect(peak - baseline < 64 << 10)
            }
        }
    }
}
