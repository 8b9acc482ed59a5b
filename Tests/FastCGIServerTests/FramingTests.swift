import FastCGI
import GatewayTestHarness
import NIOCore
import Testing

/// A record with any padding bytes and any reserved byte, written by hand.
func handmadeRecord(type: UInt8, id: UInt16, _ content: [UInt8], padding: [UInt8] = [], reserved: UInt8 = 0) -> [UInt8]
{
    precondition(content.count <= 65535 && padding.count <= 255)
    return [
        1, type, UInt8(id >> 8), UInt8(id & 0xff), UInt8(content.count >> 8), UInt8(content.count & 0xff),
        UInt8(padding.count), reserved,
    ] + content + padding
}

/// `count` bytes of junk that differ per call.
func garbage(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 2_654_435_761 >> 13) }
}

/// A whole POST request as handmade records: params in `paramsChunk`-byte records, body in
/// `stdinChunk`-byte records, every record padded with `padding` junk bytes and `reserved` set.
func handmadeRequest(
    id: UInt16,
    target: String,
    body: [UInt8],
    keepConnection: Bool = true,
    padding: Int = 0,
    reserved: UInt8 = 0,
    paramsChunk: Int = 65535,
    stdinChunk: Int = 65535,
    longLengths: Bool = false,
    extra: [(String, String)] = []
) -> [UInt8] {
    var bytes: [UInt8] = []
    var seed = Int(id)
    func pad() -> [UInt8] {
        seed += 1
        return garbage(padding, seed: seed)
    }
    bytes += handmadeRecord(
        type: RecordType.beginRequest.rawValue,
        id: id,
        [0, 1, keepConnection ? 1 : 0, 0xde, 0xad, 0xbe, 0xef, 0x42],
        padding: pad(),
        reserved: reserved
    )
    var stream: [UInt8] = []
    for (name, value) in FastCGITestRequest.cgiParams(
        method: "POST",
        target: target,
        bodyLength: body.count,
        extra: extra
    ) {
        stream += pairBytes(name, value, long: longLengths)
    }
    for start in stride(from: 0, to: stream.count, by: paramsChunk) {
        let chunk = Array(stream[start..<min(start + paramsChunk, stream.count)])
        bytes += handmadeRecord(type: RecordType.params.rawValue, id: id, chunk, padding: pad(), reserved: reserved)
    }
    bytes += handmadeRecord(type: RecordType.params.rawValue, id: id, [], padding: pad(), reserved: reserved)
    for start in stride(from: 0, to: body.count, by: stdinChunk) {
        let chunk = Array(body[start..<min(start + stdinChunk, body.count)])
        bytes += handmadeRecord(type: RecordType.stdin.rawValue, id: id, chunk, padding: pad(), reserved: reserved)
    }
    bytes += handmadeRecord(type: RecordType.stdin.rawValue, id: id, [], padding: pad(), reserved: reserved)
    return bytes
}

extension FastCGIServerTests {
    /// Record framing (§3.3, §3.4) as PROBE.md requires it.
    @Suite struct Framing {
        @Test func requestSentOneBytePerWrite() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let body = Array("one byte at a time".utf8)
                try await client.sendOneBytePerWrite(handmadeRequest(id: 9, target: "/echo", body: body, padding: 3))
                let response = try await client.response(for: 9)
                response.expectCompleted()
                #expect(response.body == body)
                // A GET_VALUES query, byte by byte too.
                var query = ByteBuffer()
                RequestEncoder.writeGetValues(["FCGI_MPXS_CONNS"], into: &query)
                try await client.sendOneBytePerWrite(query.readableBytesView)
                let event = try await client.nextManagementEvent()
                #expect(event == .getValuesResult([("FCGI_MPXS_CONNS", "1")]))
                await client.close()
            }
        }

        @Test func paddingOfAnyLengthAndContentOnEveryRecordType() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                for (index, padding) in [0, 1, 5, 7, 8, 9, 100, 200, 254, 255].enumerated() {
                    let id = UInt16(index + 1)
                    let body = garbage(1000 + index, seed: index)
                    var bytes = handmadeRequest(
                        id: id,
                        target: "/echo",
                        body: body,
                        padding: padding,
                        paramsChunk: 50,
                        stdinChunk: 333
                    )
                    // Management and stray records, padded too.
                    var query = [UInt8]()
                    for name in ["FCGI_MAX_CONNS"] { query += pairBytes(name, "") }
                    bytes += handmadeRecord(
                        type: RecordType.getValues.rawValue,
                        id: 0,
                        query,
                        padding: garbage(padding, seed: 99)
                    )
                    bytes += handmadeRecord(
                        type: RecordType.abortRequest.rawValue,
                        id: 4000,
                        [],
                        padding: garbage(padding, seed: 98)
                    )
                    bytes += handmadeRecord(
                        type: RecordType.data.rawValue,
                        id: 4000,
                        [1, 2, 3],
                        padding: garbage(padding, seed: 97)
                    )
                    try await client.send(bytes)
                    let response = try await client.response(for: id)
                    response.expectCompleted()
                    #expect(response.body == body, "padding \(padding)")
                    let values = try await client.nextManagementEvent()
                    guard case .getValuesResult(let pairs) = values else {
                        Issue.record("expected GET_VALUES_RESULT, got \(values)")
                        continue
                    }
                    #expect(pairs.map(\.0) == ["FCGI_MAX_CONNS"])
                }
                await client.close()
            }
        }

        @Test func reservedByteIsIgnored() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let body = Array("reserved".utf8)
                try await client.send(handmadeRequest(id: 1, target: "/echo", body: body, padding: 2, reserved: 0xff))
                let response = try await client.response(for: 1)
                response.expectCompleted()
                #expect(response.body == body)
                await client.close()
            }
        }

        @Test func requestID65535() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let response = try await client.perform(.get("/hello", id: 65535, keepConnection: true))
                response.expectCompleted()
                #expect(response.requestID == 65535)
                #expect(response.bodyString == "Hello, world!")
                let echo = try await client.perform(.post("/echo", body: [1, 2, 3], id: 65535))
                #expect(echo.body == [1, 2, 3])
                await client.close()
            }
        }

        @Test(arguments: [1, 2, 3, 5])
        func paramsSplitAnywhereEvenInsideLengthPrefixes(chunk: Int) async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                // A 200-byte name needs a 4-byte length prefix; 1-, 2-, 3- and 5-byte records
                // split every prefix at every position across the stream.
                let longName = "HTTP_X_" + String(repeating: "N", count: 193)
                let bytes = handmadeRequest(
                    id: 5,
                    target: "/environ",
                    body: [],
                    paramsChunk: chunk,
                    extra: [(longName, "long-name-value"), ("SHORT", "v")]
                )
                try await client.send(bytes)
                let response = try await client.response(for: 5)
                response.expectCompleted()
                let json = try #require(parseFlatJSON(response.bodyString))
                #expect(json[longName] == "long-name-value")
                #expect(json["SHORT"] == "v")
                #expect(json["PATH_INFO"] == "/environ")
                await client.close()
            }
        }

        @Test func fourByteLengthsForShortNamesAndValues() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let bytes = handmadeRequest(
                    id: 2,
                    target: "/environ",
                    body: [],
                    paramsChunk: 11,
                    longLengths: true,
                    extra: [("A", "b"), ("EMPTY", "")]
                )
                try await client.send(bytes)
                let response = try await client.response(for: 2)
                response.expectCompleted()
                let json = try #require(parseFlatJSON(response.bodyString))
                #expect(json["A"] == "b")
                #expect(json["EMPTY"] == "")
                #expect(json["REQUEST_METHOD"] == "POST")
                await client.close()
            }
        }

        @Test func emptyValuesLongNamesAnd200KBValues() async throws {
            try await withProbe { probe in
                let longName = "HTTP_" + String(repeating: "LONG_NAME_", count: 30)
                let bigValue = String(repeating: "0123456789abcdef", count: 200_000 / 16)
                let extra = [("EMPTY_ONE", ""), (longName, "x"), ("HTTP_BIG", bigValue), ("EMPTY_TWO", "")]
                let response = try await probe.perform(.get("/environ", extra: extra))
                response.expectCompleted()
                let json = try #require(parseFlatJSON(response.bodyString))
                #expect(json["EMPTY_ONE"] == "")
                #expect(json["EMPTY_TWO"] == "")
                #expect(json[longName] == "x")
                #expect(json["HTTP_BIG"]?.count == 200_000)
                #expect(json["HTTP_BIG"] == bigValue)
            }
        }

        @Test func stdinRecordsOfEverySizeWithPadding() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                let sizes = [1, 2, 3, 7, 8, 9, 127, 128, 255, 256, 4095, 4096, 4097, 30000, 65534, 65535, 1, 65535]
                var body: [UInt8] = []
                var bytes: [UInt8] = []
                let total = sizes.reduce(0, +)
                var head = Records()
                head.begin(id: 3, keepConnection: true, padding: 7)
                head.params(id: 3, FastCGITestRequest.cgiParams(method: "POST", target: "/echo", bodyLength: total))
                bytes += head.bytes
                for (index, size) in sizes.enumerated() {
                    let chunk = garbage(size, seed: index * 1000)
                    body += chunk
                    bytes += handmadeRecord(
                        type: RecordType.stdin.rawValue,
                        id: 3,
                        chunk,
                        padding: garbage((size * 7) % 256, seed: index)
                    )
                }
                bytes += handmadeRecord(type: RecordType.stdin.rawValue, id: 3, [], padding: garbage(255, seed: 1))
                try await client.send(bytes)
                let response = try await client.response(for: 3)
                response.expectCompleted()
                #expect(response.body.count == total)
                #expect(response.body == body)
                await client.close()
            }
        }

        @Test func nothingOnStdoutBeforeTheParamsEnd() async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                var records = Records()
                records.begin(id: 1, keepConnection: true)
                var stream: [UInt8] = []
                for (name, value) in FastCGITestRequest.cgiParams(method: "GET", target: "/hello") {
                    stream += pairBytes(name, value)
                }
                records.record(.params, id: 1, stream)  // all pairs, but no empty PARAMS record yet
                records.stdinEnd(id: 1)
                try await client.send(records.buffer)
                let early = try await client.nextEvent(within: .milliseconds(500))
                #expect(
                    early == nil,
                    "the server answered before the params stream ended: \(String(describing: early))"
                )
                var end = Records()
                end.record(.params, id: 1)
                try await client.send(end.buffer)
                let response = try await client.response(for: 1)
                response.expectCompleted()
                #expect(response.bodyString == "Hello, world!")
                await client.close()
            }
        }
    }

    /// What the server sends back (§5.3, §5.5).
    @Suite struct Replies {
        @Test(arguments: ["/hello", "/stream?n=5&size=70000", "/error", "/status/204", "/nope", "/big?bytes=200000"])
        func stdoutThenEmptyStdoutThenExactlyOneEndRequest(target: String) async throws {
            try await withProbe { probe in
                let client = try await probe.connect()
                try await client.send(FastCGITestRequest.get(target, id: 12, keepConnection: true))
                var sawStdout = false
                var sawStdoutEnd = false
                while true {
                    let event = try await client.nextEvent()
                    #expect(event.requestID == 12, "\(event)")
                    switch event {
                    case .stdout(_, let bytes):
                        #expect(!sawStdoutEnd, "STDOUT after the empty STDOUT")
                        #expect(bytes.readableBytes > 0 && bytes.readableBytes <= 65535)
                        sawStdout = true
                    case .stdoutEnd:
                        #expect(!sawStdoutEnd, "two empty STDOUT records")
                        sawStdoutEnd = true
                    case .stderr, .stderrEnd:
                        #expect(!sawStdoutEnd || target == "/error", "\(event)")
                    case .endRequest(_, let appStatus, let protocolStatus):
                        #expect(protocolStatus == .requestComplete)
                        if target != "/error" { #expect(appStatus == 0) }
                    default:
                        Issue.record("unexpected \(event)")
                    }
                    if case .endRequest = event { break }
                }
                #expect(sawStdout && sawStdoutEnd)
                let after = try await client.nextEvent(within: .milliseconds(300))
                #expect(after == nil, "sent after END_REQUEST: \(String(describing: after))")
                await client.close()
            }
        }
    }
}
