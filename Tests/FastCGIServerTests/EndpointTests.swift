import FastCGI
import GatewayTestHarness
import NIOCore
import Testing

extension FastCGIServerTests {
    /// Every endpoint of PROBE.md, over a Unix socket to the real `gateway-probe`.
    @Suite struct Endpoints {
        @Test func helloAnswersExactly() async throws {
            try await withProbe { probe in
                let response = try await probe.perform(.get("/hello"))
                response.expectCompleted()
                #expect(response.status == 200)
                #expect(response.header("Content-Type")?.lowercased().hasPrefix("text/plain") == true)
                #expect(response.body == Array("Hello, world!".utf8))
                if let length = response.header("Content-Length") { #expect(length == "13") }
            }
        }

        @Test func bodylessRequestWithEmptyContentLengthWorks() async throws {
            try await withProbe { probe in
                // nginx sends CONTENT_LENGTH="" for requests without a body.
                let response = try await probe.perform(.get("/hello", extra: [("CONTENT_LENGTH", "")]))
                #expect(response.bodyString == "Hello, world!")
                let environ = try await probe.perform(.get("/environ", extra: [("CONTENT_LENGTH", "")]))
                #expect(environ.status == 200)
            }
        }

        @Test func echoReturnsTheBodyByteForByte() async throws {
            try await withProbe { probe in
                let body = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                let response = try await probe.perform(.post("/echo", body: body))
                response.expectCompleted()
                #expect(response.status == 200)
                #expect(response.header("Content-Type")?.lowercased() == "application/octet-stream")
                #expect(response.body == body)
                let empty = try await probe.perform(.post("/echo", body: []))
                #expect(empty.status == 200 && empty.body.isEmpty)
            }
        }

        @Test func echoOf32MiB() async throws {
            try await withProbe { probe in
                let size = 32 << 20
                let body = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                    for index in 0..<size { buffer[index] = UInt8(truncatingIfNeeded: index &+ index >> 16) }
                    count = size
                }
                let client = try await probe.connect()
                let head = FastCGITestRequest(
                    id: 7,
                    params: FastCGITestRequest.cgiParams(method: "PUT", target: "/echo", bodyLength: size)
                )
                try await client.send(head.encodedHead())
                try await client.sendStdin(body, requestID: 7, recordSize: 65535, paddingLength: 1)
                try await client.sendStdinEnd(requestID: 7)
                let response = try await client.response(for: 7, timeout: .seconds(60))
                response.expectCompleted()
                #expect(response.status == 200)
                #expect(response.body.count == size)
                #expect(response.body == body)
                await client.close()
            }
        }

        @Test func environReportsExactlyTheParamsSent() async throws {
            try await withProbe { probe in
                let extra: [(String, String)] = [
                    ("HTTP_X_CUSTOM", "a \"quoted\" \\ value\twith tab"),
                    ("EMPTY_VALUE", ""),
                    ("HTTP_HOST", "example.test"),
                    // nginx passes the request's headers on, these two included; the gateway
                    // keeps them out of `variables`, the probe still echoes them.
                    ("HTTP_CONTENT_TYPE", "application/octet-stream"),
                    ("HTTP_CONTENT_LENGTH", "7"),
                ]
                let request = FastCGITestRequest.post("/environ?a=1&b=two", body: Array("ignored".utf8), extra: extra)
                let response = try await probe.perform(request)
                response.expectCompleted()
                #expect(response.status == 200)
                #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true)
                let json = try #require(parseFlatJSON(response.bodyString), "\(response.bodyString)")
                for (name, value) in request.params {
                    #expect(json[name] == value, "param \(name)")
                }
                #expect(json["url_scheme"] == "http")
                #expect(json["QUERY_STRING"] == "a=1&b=two")
            }
        }

        @Test(arguments: [
            ([("HTTPS", "on")], "https"),
            ([("HTTPS", "ON")], "https"),
            ([("HTTPS", "1")], "https"),
            ([("HTTPS", "off")], "http"),
            ([("HTTPS", "")], "http"),
            ([("REQUEST_SCHEME", "https")], "https"),
            ([("REQUEST_SCHEME", "HTTPS")], "https"),
            ([("REQUEST_SCHEME", "http")], "http"),
            // PROBE.md names on and 1 only; Environ.urlScheme's extras do not reach the probe.
            ([("HTTPS", "yes")], "http"),
            ([("REQUEST_SCHEME", "ftp")], "http"),
            ([("REQUEST_SCHEME", "http"), ("HTTPS", "on")], "https"),
            ([], "http"),
        ])
        func environURLScheme(extra: [(String, String)], expected: String) async throws {
            try await withProbe { probe in
                let response = try await probe.perform(.get("/environ", extra: extra))
                let json = try #require(parseFlatJSON(response.bodyString))
                #expect(json["url_scheme"] == expected, "\(extra)")
            }
        }

        @Test func environHasNoCrosstalkBetweenMultiplexedRequests() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                let ids: [UInt16] = [1, 2, 3, 4]
                for id in ids {
                    records.begin(id: id, keepConnection: true)
                }
                // Interleave the params streams record by record.
                var streams: [UInt16: [UInt8]] = [:]
                for id in ids {
                    var pairs = ByteBuffer()
                    for (name, value) in FastCGITestRequest.cgiParams(
                        method: "GET",
                        target: "/environ",
                        extra: [("ONLY_FOR_\(id)", "value-\(id)")]
                    ) {
                        pairs.writeBytes(pairBytes(name, value))
                    }
                    streams[id] = Array(pairs.readableBytesView)
                }
                var offset = 0
                while streams.values.contains(where: { $0.count > offset }) {
                    for id in ids where streams[id]!.count > offset {
                        let chunk = streams[id]![offset..<min(offset + 7, streams[id]!.count)]
                        records.record(.params, id: id, Array(chunk))
                    }
                    offset += 7
                }
                for id in ids {
                    records.record(.params, id: id)
                    records.stdinEnd(id: id)
                }
                try await client.send(records.buffer)
                for id in ids {
                    let response = try await client.response(for: id)
                    response.expectCompleted()
                    let json = try #require(parseFlatJSON(response.bodyString))
                    #expect(json["ONLY_FOR_\(id)"] == "value-\(id)")
                    for other in ids where other != id {
                        #expect(json["ONLY_FOR_\(other)"] == nil, "request \(id) sees request \(other)'s param")
                    }
                }
                await client.close()
            }
        }

        @Test func streamFlushesEachChunkBeforeProducingTheNext() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let start = ContinuousClock.now
                try await client.send(FastCGITestRequest.get("/stream?n=4&size=100&delay_ms=300", id: 3))
                var arrivals: [(Duration, Int)] = []
                var response = ""
                while true {
                    let event = try await client.nextEvent(for: 3)
                    if case .stdout(_, let bytes) = event {
                        arrivals.append((ContinuousClock.now - start, bytes.readableBytes))
                        response += String(buffer: bytes)
                    }
                    if case .endRequest(_, let appStatus, let status) = event {
                        #expect(appStatus == 0 && status == .requestComplete)
                        break
                    }
                }
                let parsed = CGIResponse(parsing: Array(response.utf8))
                #expect(parsed.status == 200)
                #expect(parsed.header("Content-Type")?.lowercased() == "application/octet-stream")
                #expect(parsed.body == [UInt8](repeating: UInt8(ascii: "x"), count: 400))
                // Each chunk is its own STDOUT output, flushed before the app sleeps.
                #expect(arrivals.count >= 4, "\(arrivals)")
                // No sleep before the first chunk, none after the last.
                #expect(arrivals[0].0 < .milliseconds(250), "\(arrivals)")
                let total = arrivals.last!.0
                #expect(total >= .milliseconds(880) && total < .milliseconds(1500), "\(arrivals)")
                // The chunks arrive about 300 ms apart.
                let dataArrivals = arrivals.filter { $0.1 >= 100 }
                for (earlier, later) in zip(dataArrivals, dataArrivals.dropFirst()) {
                    #expect(later.0 - earlier.0 >= .milliseconds(200), "\(arrivals)")
                }
                await client.close()
            }
        }

        @Test func streamDefaultsAndSizes() async throws {
            try await withProbe { probe in
                let single = try await probe.perform(.get("/stream"))
                #expect(single.status == 200 && single.body == [UInt8(ascii: "x")])
                let many = try await probe.perform(.get("/stream?n=50&size=3000"))
                #expect(many.body.count == 150_000 && many.body.allSatisfy { $0 == UInt8(ascii: "x") })
                #expect(many.stdoutRecordSizes.count >= 50)
                // The query is form-encoded: %32 is "2", and a repeated name counts once.
                let encoded = try await probe.perform(.get("/stream?n=%32&size=%33&n=9"))
                #expect(encoded.body.count == 6)
                let malformed = try await probe.perform(.get("/stream?n=-2&size=%3"))
                #expect(malformed.body == [UInt8(ascii: "x")], "malformed values take the defaults")
                // Sizes that would overflow the total or allocate gigabytes are refused, not a crash.
                for target in ["/stream?n=100000000000000000&size=1000", "/stream?size=999999999999"] {
                    let refused = try await probe.perform(.get(target))
                    refused.expectCompleted()
                    #expect(refused.status == 400, "\(target)")
                }
            }
        }

        @Test func statusEndpointsSendStatusLines() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                for (index, code) in [200, 201, 204, 301, 400, 404, 418, 451, 500, 503, 599].enumerated() {
                    let response = try await client.perform(
                        .get("/status/\(code)", id: UInt16(index + 1), keepConnection: true)
                    )
                    response.expectCompleted()
                    #expect(response.status == code)
                    #expect(response.body.isEmpty)
                    if code != 200 {
                        let line = try #require(response.header("Status"))
                        #expect(line.hasPrefix("\(code)"))
                    }
                }
                for (index, target) in ["/status/+404", "/status/404x", "/status/600", "/status/99"].enumerated() {
                    let response = try await client.perform(.get(target, id: UInt16(index + 1), keepConnection: true))
                    #expect(response.status == 404, "\(target)")
                }
                await client.close()
            }
        }

        @Test func errorBecomes500AndTheKeptConnectionStaysUsable() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let failed = try await client.perform(.get("/error", id: 1, keepConnection: true))
                failed.expectCompleted(appStatus: nil)
                #expect(failed.status == 500)
                #expect(failed.header("Status")?.hasPrefix("500") == true)
                #expect(!failed.bodyString.contains("requested"), "the error leaked to the client")
                // The error goes to the web server's error log, as FCGI_STDERR.
                let stderr = String(decoding: failed.stderr, as: UTF8.self)
                #expect(stderr.contains("application error") && stderr.contains("/error"), "stderr: \(stderr)")
                let next = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                #expect(next.bodyString == "Hello, world!")
                // And without keep-conn the connection closes after the 500.
                let last = try await client.perform(.get("/error", id: 2))
                #expect(last.status == 500)
                try await client.waitForClose()
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func slowSleepsThenAnswersDone() async throws {
            try await withProbe { probe in
                var response: FastCGITestResponse?
                let elapsed = try await measure { response = try await probe.perform(.get("/slow?ms=300")) }
                #expect(response?.status == 200)
                #expect(response?.bodyString == "done")
                #expect(response?.header("Content-Type")?.lowercased().hasPrefix("text/plain") == true)
                #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(3))
            }
        }

        @Test func bigAndCount() async throws {
            try await withProbe { probe in
                let big = try await probe.perform(.get("/big?bytes=1000001"))
                big.expectCompleted()
                #expect(big.header("Content-Type")?.lowercased() == "application/octet-stream")
                #expect(big.body.count == 1_000_001 && big.body.allSatisfy { $0 == UInt8(ascii: "x") })
                let count = try await probe.perform(.post("/count", body: [UInt8](repeating: 1, count: 123_457)))
                #expect(count.status == 200 && count.bodyString == "123457")
                let zero = try await probe.perform(.post("/count", body: []))
                #expect(zero.bodyString == "0")
            }
        }

        @Test func failAfterCutsTheConnectionWithoutEndingTheRequest() async throws {
            try await withProbe { probe in
                for (query, bytes, declared) in [
                    ("?bytes=5000", 5000, false), ("?bytes=5000&declared=1", 5000, true), ("", 1000, false),
                ] {
                    let client = try await probe.connect()
                    // Kept: only a cut (not the end of an unkept request) closes the connection.
                    try await client.send(FastCGITestRequest.get("/fail-after" + query, id: 1, keepConnection: true))
                    // The server ends with an invalid record header, then closes: collect what
                    // came before until the client reports the protocol error or the close.
                    var events: [ResponseEvent] = []
                    while true {
                        do {
                            events.append(try await client.nextEvent(timeout: .seconds(10)))
                        } catch FastCGITestClientError.timedOut {
                            Issue.record("\(query): the connection stayed open")
                            break
                        } catch {
                            break
                        }
                    }
                    var stdout: [UInt8] = []
                    for case .stdout(_, let bytes) in events { stdout += Array(buffer: bytes) }
                    let ended = events.contains { event in
                        switch event {
                        case .stdoutEnd, .endRequest: true
                        default: false
                        }
                    }
                    #expect(!ended, "\(query): the cut response was ended as if complete: \(events)")
                    let parsed = CGIResponse(parsing: stdout)
                    #expect(parsed.status == 200, "\(query)")
                    #expect(parsed.header("Content-Type")?.lowercased() == "application/octet-stream")
                    #expect(parsed.header("Content-Length") == (declared ? String(2 * bytes) : nil), "\(query)")
                    #expect(parsed.body == [UInt8](repeating: UInt8(ascii: "x"), count: bytes), "\(query)")
                    await client.close()
                }
                // Nothing written yet when it throws: a clean 500, the request ended normally.
                let nothing = try await probe.perform(.get("/fail-after?bytes=0"))
                nothing.expectCompleted(appStatus: nil)
                #expect(nothing.status == 500)
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func unknownPathsAre404() async throws {
            try await withProbe { probe in
                for path in ["/", "/nope", "/hello/world/x", "/status/abc", "/status/99"] {
                    let response = try await probe.perform(.get(path))
                    response.expectCompleted()
                    #expect(response.status == 404, "\(path)")
                    #expect(response.header("Status")?.hasPrefix("404") == true, "\(path)")
                }
            }
        }
    }
}
