import FastCGI
import GatewayTestHarness
import NIOCore
import Testing

extension FastCGIServerTests {
    /// `FCGI_KEEP_CONN` (§5.1).
    @Suite struct KeepConnection {
        @Test func withoutKeepConnTheConnectionClosesAfterEndRequest() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let response = try await client.perform(.get("/hello"))
                response.expectCompleted()
                let extra = try await client.waitForClose(timeout: .seconds(5))
                #expect(extra.isEmpty, "records after END_REQUEST: \(extra)")
            }
        }

        @Test func aRequestSentWholeInOneWriteGetsAFullCloseAfterItsAnswer() async throws {
            // nginx writes BEGIN_REQUEST, the params and the empty STDIN at once. The answer is
            // ready before the STDIN end is decoded, yet nothing more can come: the server closes
            // outright instead of half-closing and waiting to drain the web server's input.
            try await withProbe { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                records.request(.get("/hello", id: 1))
                try socket.write(records.bytes)
                let (bytes, eof) = socket.read(timeoutMilliseconds: 5000)
                #expect(eof, "connection left open")
                #expect(splitRecords(bytes).last?.type == RecordType.endRequest.rawValue)
                // Fully closed: a late write fails instead of being drained.
                try await Task.sleep(for: .milliseconds(50))
                #expect(throws: RawSocket.Failure.self) { try socket.write([1, 5, 0, 1, 0, 0, 0, 0]) }
            }
        }

        @Test func aWebServerThatHalfClosesAfterItsRequestStillGetsTheAnswer() async throws {
            // A client may shut down its writing side once the request is sent: the server
            // treats that as "no more requests" and still answers the one in flight.
            try await withProbe { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                records.request(.get("/slow?ms=200", id: 1, keepConnection: true))
                try socket.write(records.bytes)
                socket.shutdownWrite()
                let (bytes, eof) = socket.read(timeoutMilliseconds: 5000)
                #expect(eof, "connection left open after the answer")
                let replies = splitRecords(bytes)
                let body = replies.filter { $0.type == RecordType.stdout.rawValue }.flatMap(\.content)
                #expect(String(decoding: body, as: UTF8.self).hasSuffix("done"))
                #expect(replies.last?.type == RecordType.endRequest.rawValue)
            }
        }

        @Test func aWebServerThatHalfClosesMidRequestGetsThoseRequestsEnded() async throws {
            // Once the web server has closed its side, a request whose params or body never
            // ended can never go on: it is ended (or its body fails) instead of waiting forever.
            try await withProbe { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                records.begin(id: 1, keepConnection: true)
                records.raw(type: RecordType.params.rawValue, id: 1, pairBytes("REQUEST_METHOD", "GET"))
                records.begin(id: 2, keepConnection: true)
                records.params(
                    id: 2,
                    FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: 100)
                )
                records.raw(type: RecordType.stdin.rawValue, id: 2, [UInt8](repeating: 0x61, count: 10))
                try socket.write(records.bytes)
                try await Task.sleep(for: .milliseconds(100))
                socket.shutdownWrite()
                let (bytes, eof) = socket.read(timeoutMilliseconds: 5000)
                #expect(eof, "the connection stayed open")
                let replies = splitRecords(bytes)
                let ended = replies.filter { $0.type == RecordType.endRequest.rawValue }.map(\.id)
                #expect(Set(ended) == [1, 2], "\(replies.map { ($0.type, $0.id) })")
                // The echo's body failed before its head: a 500, with the reason in the log.
                let echo = replies.filter { $0.type == RecordType.stdout.rawValue && $0.id == 2 }.flatMap(\.content)
                #expect(
                    String(decoding: echo, as: UTF8.self).hasPrefix("Status: 500"),
                    "\(String(decoding: echo, as: UTF8.self))"
                )
                #expect(probe.log.contains("closed its side before the params ended"), "\(probe.log)")
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func aBodyEndingBeforeItsContentLengthIsAnErrorNotAShortBody() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let request = FastCGITestRequest(
                    id: 1,
                    keepConnection: true,
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: 100),
                    stdin: [UInt8](repeating: 0x61, count: 10)
                )
                let response = try await client.perform(request)
                response.expectCompleted()
                #expect(response.status == 500, "\(response.bodyString)")
                #expect(
                    String(decoding: response.stderr, as: UTF8.self).contains("the input ended after 10 of 100 bytes"),
                    "\(probe.log)"
                )
                let next = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                #expect(next.bodyString == "Hello, world!")
            }
        }

        @Test func theLastRecordsPaddingIsReadBeforeClosing() async throws {
            // The empty STDIN record ends the request at its header; its padding arrives later.
            // Closing in between would answer the padding with a reset, which over TCP can cut
            // the response the web server is still reading.
            try await withProbe { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                records.begin(id: 1)
                records.params(id: 1, FastCGITestRequest.cgiParams(method: "GET", target: "/big?bytes=3000000"))
                records.raw(type: RecordType.stdin.rawValue, id: 1, [], padding: 8)
                let request = records.bytes
                try socket.write(Array(request.dropLast(8)))
                let (bytes, eof) = socket.read(timeoutMilliseconds: 5000, limit: 4 << 20)
                #expect(eof, "connection left open")
                let replies = splitRecords(bytes)
                #expect(replies.last?.type == RecordType.endRequest.rawValue)
                let stdout = replies.filter { $0.type == RecordType.stdout.rawValue }.reduce(0) {
                    $0 + $1.content.count
                }
                #expect(stdout > 3_000_000)
                // Still reading: the padding is taken, not refused.
                try socket.write(Array(request.suffix(8)))
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func inputStillOwedAfterTheAnswerIsDrainedNotReset() async throws {
            // The answer goes out before the body it did not read has arrived: the server
            // half-closes and keeps reading, so the web server can finish sending without a reset.
            try await withProbe { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var records = Records()
                records.begin(id: 1)
                records.params(
                    id: 1,
                    FastCGITestRequest.cgiParams(method: "POST", target: "/hello", bodyLength: 200_000)
                )
                try socket.write(records.bytes)
                let (bytes, eof) = socket.read(timeoutMilliseconds: 5000)
                #expect(eof, "no half-close after the answer")
                #expect(splitRecords(bytes).last?.type == RecordType.endRequest.rawValue)
                var body = Records()
                for _ in 0..<4 {
                    body.raw(type: RecordType.stdin.rawValue, id: 1, [UInt8](repeating: 0x78, count: 50_000))
                }
                body.stdinEnd(id: 1)
                try await Task.sleep(for: .milliseconds(50))
                try socket.write(body.bytes)
                try await probe.expectServesFreshConnection()
            }
        }

        @Test func hundredSequentialRequestsReusingIDsThenIdleThenStillUsable() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                for index in 0..<100 {
                    let id = UInt16(index % 3 + 1)
                    let request: FastCGITestRequest =
                        index.isMultiple(of: 2)
                        ? .get("/hello", id: id, keepConnection: true)
                        : .post("/echo", body: Array("request \(index)".utf8), id: id, keepConnection: true)
                    let response = try await client.perform(request)
                    response.expectCompleted()
                    #expect(
                        response.bodyString == (index.isMultiple(of: 2) ? "Hello, world!" : "request \(index)"),
                        "request \(index)"
                    )
                }
                try await Task.sleep(for: .seconds(2))
                #expect(await !client.isClosed)
                let late = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                #expect(late.bodyString == "Hello, world!")
                // The flag applies per request: one without it ends the connection.
                let last = try await client.perform(.get("/hello", id: 2, keepConnection: false))
                #expect(last.bodyString == "Hello, world!")
                let extra = try await client.waitForClose(timeout: .seconds(5))
                #expect(extra.isEmpty)
            }
        }
    }

    /// `FCGI_GET_VALUES` (§4.1) and unknown management records (§4.2).
    @Suite struct Management {
        @Test func getValuesAnswersExactlyOneResultOnID0() async throws {
            try await withProbe(["--max-connections", "77", "--max-requests", "999"]) { probe in
                let socket = try RawSocket(unixPath: probe.socketPath)
                var query = ByteBuffer()
                RequestEncoder.writeGetValues(
                    ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS", "FCGI_NO_SUCH_VARIABLE"],
                    into: &query
                )
                #expect(query.readableBytes % 8 != 0, "the query should carry no padding")
                try socket.write(Array(query.readableBytesView))
                let (bytes, eof) = socket.read(timeoutMilliseconds: 500)
                #expect(!eof)
                let records = splitRecords(bytes)
                try #require(records.count == 1, "\(records)")
                #expect(records[0].type == RecordType.getValuesResult.rawValue)
                #expect(records[0].id == 0)
                var decoder = ResponseDecoder()
                var buffer = ByteBuffer(bytes: bytes)
                let event = try decoder.next(from: &buffer)
                guard case .getValuesResult(let pairs)? = event else {
                    Issue.record("not a GET_VALUES_RESULT: \(String(describing: event))")
                    return
                }
                let values = Dictionary(uniqueKeysWithValues: pairs)
                #expect(values == ["FCGI_MAX_CONNS": "77", "FCGI_MAX_REQS": "999", "FCGI_MPXS_CONNS": "1"])
            }
        }

        @Test func getValuesBetweenRequestsOnAKeptConnection() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                for round in 0..<3 {
                    let response = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                    #expect(response.bodyString == "Hello, world!")
                    try await client.sendGetValues(["FCGI_MPXS_CONNS", "FCGI_MAX_REQS"])
                    let event = try await client.nextManagementEvent()
                    guard case .getValuesResult(let pairs) = event else {
                        Issue.record("round \(round): \(event)")
                        continue
                    }
                    #expect(pairs.map(\.0).sorted() == ["FCGI_MAX_REQS", "FCGI_MPXS_CONNS"])
                    #expect(pairs.allSatisfy { UInt($0.1) != nil }, "values must be decimal: \(pairs)")
                    #expect(try await client.nextEvent(within: .milliseconds(200)) == nil, "more than one result")
                }
                // An empty query gets an empty result, still exactly one.
                try await client.sendGetValues([])
                #expect(try await client.nextManagementEvent() == .getValuesResult([]))
                await client.close()
            }
        }

        @Test(arguments: [UInt8(0), 12, 99, 255, RecordType.beginRequest.rawValue, RecordType.stdin.rawValue])
        func unknownManagementTypeGetsUnknownTypeEchoingIt(type: UInt8) async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                records.raw(type: type, id: 0, [1, 2, 3, 4, 5], padding: 3)
                try await client.send(records.buffer)
                #expect(try await client.nextManagementEvent() == .unknownType(type))
                #expect(try await client.nextEvent(within: .milliseconds(200)) == nil)
                let response = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                #expect(response.bodyString == "Hello, world!")
                await client.close()
            }
        }
    }

    /// Roles (§6): only the roles the server is configured for run the application (the probe,
    /// like every app by default, is a Responder only).
    @Suite struct Roles {
        @Test func unknownRoleIsRefusedAndTheSameIDWorksAfterwards() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                for role: UInt16 in [99, 2, 3, 0, 65535] {
                    var records = Records()
                    records.begin(id: 4, role: role, keepConnection: true)
                    // A web server sends the rest of the request anyway: ignored (inactive id).
                    records.params(id: 4, FastCGITestRequest.cgiParams(method: "GET", target: "/hello"))
                    records.record(.stdin, id: 4, [1, 2, 3])
                    records.stdinEnd(id: 4)
                    try await client.send(records.buffer)
                    let response = try await client.response(for: 4)
                    #expect(response.protocolStatus == .unknownRole, "role \(role)")
                    #expect(response.stdout.isEmpty, "role \(role) got stdout")
                    #expect(try await client.nextEvent(within: .milliseconds(200)) == nil)
                    let next = try await client.perform(.get("/hello", id: 4, keepConnection: true))
                    next.expectCompleted()
                    #expect(next.bodyString == "Hello, world!")
                }
                // Without keep-conn the refusal closes the connection.
                var records = Records()
                records.begin(id: 5, role: 99)
                try await client.send(records.buffer)
                let refused = try await client.response(for: 5)
                #expect(refused.protocolStatus == .unknownRole)
                try await client.waitForClose(timeout: .seconds(5))
            }
        }

        @Test func authorizerRoleRunsTheApplicationWhenConfigured() async throws {
            try await withServer(roles: [.responder, .authorizer]) { server in
                let client = try await server.connect()
                var request = FastCGITestRequest.get("/hello", id: 2, keepConnection: true)
                request.role = .authorizer
                let response = try await client.perform(request)
                response.expectCompleted()
                #expect(response.status == 200)
                #expect(response.bodyString == "hello")
                await client.close()
            }
            // Filter is never run, even when asked for.
            try await withServer(roles: [.responder, .filter]) { server in
                let client = try await server.connect()
                var filter = FastCGITestRequest.get("/hello", id: 1, keepConnection: true)
                filter.role = .filter
                #expect(try await client.perform(filter).protocolStatus == .unknownRole)
                #expect(
                    server.log.contains("roles not supported, their requests will be refused: filter"),
                    "\(server.log.entries)"
                )
                await client.close()
            }
        }
    }

    /// Multiplexing (§3.3, §5.1): the server declares FCGI_MPXS_CONNS=1 and must run requests concurrently.
    @Suite struct Multiplexing {
        @Test func slowRequestBegunFirstFinishesAfterQuickOnesBegunLater() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let start = ContinuousClock.now
                try await client.send(FastCGITestRequest.get("/slow?ms=1000", id: 1, keepConnection: true))
                for id: UInt16 in 2...6 {
                    try await client.send(FastCGITestRequest.get("/hello", id: id, keepConnection: true))
                }
                var order: [UInt16] = []
                var quickDone = Duration.zero
                while order.count < 6 {
                    let event = try await client.nextEvent()
                    if case .endRequest(let id, let appStatus, let status) = event {
                        #expect(appStatus == 0 && status == .requestComplete)
                        order.append(id)
                        if id != 1 { quickDone = ContinuousClock.now - start }
                    }
                }
                #expect(order.last == 1, "the slow request should end last: \(order)")
                #expect(quickDone < .milliseconds(700), "quick requests waited for the slow one: \(quickDone)")
                let response = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                #expect(response.bodyString == "Hello, world!")
                await client.close()
            }
        }

        /// 64 (and then 1000) requests in flight on one connection, each sleeping 1 s: all are answered,
        /// in about one second, so they really ran at the same time.
        @Test(arguments: [64, 1000])
        func manyRequestsInFlightOnOneConnection(count: Int) async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                for id in 1...count {
                    records.request(.get("/slow?ms=1000", id: UInt16(id), keepConnection: true))
                }
                let elapsed = try await measure {
                    try await client.send(records.buffer)
                    var done = Set<UInt16>()
                    while done.count < count {
                        let event = try await client.nextEvent()
                        if case .endRequest(let id, _, let status) = event {
                            #expect(status == .requestComplete)
                            #expect(done.insert(id).inserted, "second END_REQUEST for \(id)")
                        }
                    }
                }
                #expect(elapsed < .seconds(4), "\(count) requests of 1 s took \(elapsed)")
                print("multiplexed \(count) concurrent /slow?ms=1000 on one connection in \(elapsed)")
                await client.close()
            }
        }
    }

    /// `FCGI_ABORT_REQUEST` (§5.4).
    @Suite struct Abort {
        @Test func abortDuringSlowEndsWithinThreeSecondsAndOnlyOnce() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                try await client.send(FastCGITestRequest.get("/slow?ms=20000", id: 3, keepConnection: true))
                try await Task.sleep(for: .milliseconds(200))
                var response: FastCGITestResponse?
                let elapsed = try await measure {
                    try await client.sendAbort(requestID: 3)
                    try await client.sendAbort(requestID: 3)
                    response = try await client.response(for: 3, timeout: .seconds(3))
                }
                #expect(response?.protocolStatus == .requestComplete)
                #expect(elapsed < .seconds(3))
                #expect(try await client.nextEvent(within: .milliseconds(500)) == nil, "more after END_REQUEST")
                let next = try await client.perform(.get("/hello", id: 3, keepConnection: true))
                #expect(next.bodyString == "Hello, world!")
                await client.close()
            }
        }

        @Test func abortBeforeTheParamsAreComplete() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                records.begin(id: 8, keepConnection: true)
                records.record(.params, id: 8, pairBytes("REQUEST_METHOD", "GET") + [0x0e])  // cut inside a pair
                records.record(.abortRequest, id: 8)
                try await client.send(records.buffer)
                let response = try await client.response(for: 8, timeout: .seconds(3))
                #expect(response.protocolStatus == .requestComplete)
                #expect(try await client.nextEvent(within: .milliseconds(300)) == nil)
                let next = try await client.perform(.get("/hello", id: 8, keepConnection: true))
                #expect(next.bodyString == "Hello, world!")
                await client.close()
            }
        }

        @Test func abortWhileTheBodyArrives() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let head = FastCGITestRequest(
                    id: 2,
                    keepConnection: true,
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: 1_000_000)
                )
                try await client.send(head.encodedHead())
                try await client.sendStdin([UInt8](repeating: 7, count: 100_000), requestID: 2, recordSize: 4000)
                try await client.sendAbort(requestID: 2)
                let response = try await client.response(for: 2, timeout: .seconds(3))
                #expect(response.protocolStatus == .requestComplete)
                // The rest of the body, now for an inactive id: ignored.
                try await client.sendStdin([UInt8](repeating: 7, count: 100_000), requestID: 2, recordSize: 4000)
                try await client.sendStdinEnd(requestID: 2)
                #expect(try await client.nextEvent(within: .milliseconds(300)) == nil)
                let next = try await client.perform(.post("/echo", body: [9, 9], id: 2, keepConnection: true))
                #expect(next.body == [9, 9])
                await client.close()
            }
        }
    }

    /// Records for ids that are not active (§3.3) are ignored.
    @Suite struct InactiveIDs {
        @Test func recordsForNeverBegunAndEndedIDsAreIgnored() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let first = try await client.perform(.get("/hello", id: 1, keepConnection: true))
                #expect(first.bodyString == "Hello, world!")
                // Request 2 is in flight, waiting for its body.
                let head = FastCGITestRequest(
                    id: 2,
                    keepConnection: true,
                    params: FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: 6)
                )
                try await client.send(head.encodedHead())
                var stray = Records()
                for id: UInt16 in [1, 77, 65535] {
                    stray.record(.stdin, id: id, Array("STRAY!".utf8))
                    stray.record(.params, id: id, pairBytes("STRAY", "param"))
                    stray.record(.params, id: id)
                    stray.record(.stdin, id: id)
                    stray.record(.abortRequest, id: id)
                    stray.record(.data, id: id, [1])
                }
                stray.record(.stdin, id: 2, Array("body!!".utf8))
                stray.stdinEnd(id: 2)
                try await client.send(stray.buffer)
                let response = try await client.response(for: 2)
                response.expectCompleted()
                #expect(response.bodyString == "body!!")
                #expect(try await client.nextEvent(within: .milliseconds(300)) == nil)
                #expect(await !client.isClosed)
                let environ = try await client.perform(.get("/environ", id: 77, keepConnection: true))
                let json = try #require(parseFlatJSON(environ.bodyString))
                #expect(json["STRAY"] == nil)
                await client.close()
            }
        }
    }
}
