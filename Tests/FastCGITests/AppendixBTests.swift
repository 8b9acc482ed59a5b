import FastCGI
import NIOCore
import Testing

/// The message flows of the specification's Appendix B, byte for byte, in both directions.
@Suite struct AppendixBTests {
    // "\013\002SERVER_PORT80\013\016SERVER_ADDR199.170.183.42" (the spec's octal escapes)
    static let paramsContent: [UInt8] =
        [11, 2] + bytes("SERVER_PORT80") + [11, 14] + bytes("SERVER_ADDR199.170.183.42")
    static let params = NameValuePairs([("SERVER_PORT", "80"), ("SERVER_ADDR", "199.170.183.42")])
    static let page = "Content-type: text/html\r\n\r\n<html>\n<head> ... "

    @Test func paramsContentIsTheSpecBytes() {
        #expect(Self.paramsContent.count == 42)
        var encoded = ByteBuffer()
        RequestEncoder.writeNameValuePair(name: bytes("SERVER_PORT"), value: bytes("80"), into: &encoded)
        RequestEncoder.writeNameValuePair(name: bytes("SERVER_ADDR"), value: bytes("199.170.183.42"), into: &encoded)
        #expect(array(encoded) == Self.paramsContent)
    }

    /// Example 1: a request with no stdin data, and a successful response.
    @Test func example1() throws {
        let wire =
            record(1, 1, beginBody()) + record(4, 1, Self.paramsContent, padding: 6) + record(4, 1) + record(5, 1)
        var encoded = ByteBuffer()
        RequestEncoder.writeBeginRequest(requestID: 1, keepConnection: false, into: &encoded)
        RequestEncoder.writeParams(
            [("SERVER_PORT", "80"), ("SERVER_ADDR", "199.170.183.42")],
            requestID: 1,
            into: &encoded
        )
        RequestEncoder.writeStdinEnd(requestID: 1, into: &encoded)
        #expect(array(encoded) == wire)
        #expect(
            try decode(wire) == [
                .begin(requestID: 1, role: .responder, keepConnection: false),
                .params(requestID: 1, Self.params),
                .stdinEnd(requestID: 1),
            ]
        )

        let page = bytes(Self.page)
        let reply = record(6, 1, page, padding: 3) + record(6, 1) + record(3, 1, [0, 0, 0, 0, 0, 0, 0, 0])
        var out = ByteBuffer()
        ResponseEncoder.writeStream(.stdout, requestID: 1, bytes: page, into: &out)
        ResponseEncoder.writeStreamEnd(.stdout, requestID: 1, into: &out)
        ResponseEncoder.writeEndRequest(requestID: 1, appStatus: 0, protocolStatus: .requestComplete, into: &out)
        #expect(array(out) == reply)
        #expect(
            try decodeResponse(reply) == [
                .stdout(requestID: 1, buffer(page)),
                .stdoutEnd(requestID: 1),
                .endRequest(requestID: 1, appStatus: 0, protocolStatus: .requestComplete),
            ]
        )
    }

    /// Example 2: stdin data, and params split across records in the middle of a name.
    @Test func example2() throws {
        let first = Array(Self.paramsContent[..<20])  // ends in "SER"
        let second = Array(Self.paramsContent[20...])  // "VER_ADDR199.170.183.42"
        #expect(Array(first.suffix(3)) == bytes("SER"))
        let wire =
            record(1, 1, beginBody()) + record(4, 1, first) + record(4, 1, second) + record(4, 1)
            + record(5, 1, bytes("quantity=100&item=3047936")) + record(5, 1)
        #expect(
            try decode(wire) == [
                .begin(requestID: 1, role: .responder, keepConnection: false),
                .params(requestID: 1, Self.params),
                stdin(1, "quantity=100&item=3047936"),
                .stdinEnd(requestID: 1),
            ]
        )
        var encoded = ByteBuffer()
        RequestEncoder.writeStdin(bytes("quantity=100&item=3047936"), requestID: 1, into: &encoded)
        RequestEncoder.writeStdinEnd(requestID: 1, into: &encoded)
        #expect(array(encoded) == record(5, 1, bytes("quantity=100&item=3047936"), padding: 7) + record(5, 1))
    }

    /// Example 3: the application logs to stderr and exits with status 938.
    @Test func example3() throws {
        let part1 = bytes("Content-type: text/html\r\n\r\n<ht")
        let log = bytes("config error: missing SI_UID\n")
        let part2 = bytes("ml>\n<head> ... ")
        let reply =
            record(6, 1, part1, padding: 2) + record(7, 1, log, padding: 3) + record(6, 1, part2, padding: 1)
            + record(6, 1) + record(7, 1) + record(3, 1, [0, 0, 0x03, 0xAA, 0, 0, 0, 0])
        var out = ByteBuffer()
        ResponseEncoder.writeStream(.stdout, requestID: 1, bytes: part1, into: &out)
        ResponseEncoder.writeStream(.stderr, requestID: 1, bytes: log, into: &out)
        ResponseEncoder.writeStream(.stdout, requestID: 1, buffer: buffer(part2), into: &out)
        ResponseEncoder.writeStreamEnd(.stdout, requestID: 1, into: &out)
        ResponseEncoder.writeStreamEnd(.stderr, requestID: 1, into: &out)
        ResponseEncoder.writeEndRequest(requestID: 1, appStatus: 938, protocolStatus: .requestComplete, into: &out)
        #expect(array(out) == reply)
        #expect(
            try decodeResponse(reply) == [
                .stdout(requestID: 1, buffer(part1)),
                .stderr(requestID: 1, buffer(log)),
                .stdout(requestID: 1, buffer(part2)),
                .stdoutEnd(requestID: 1),
                .stderrEnd(requestID: 1),
                .endRequest(requestID: 1, appStatus: 938, protocolStatus: .requestComplete),
            ]
        )
    }

    /// Example 4: two multiplexed requests with FCGI_KEEP_CONN, finished out of order.
    @Test func example4() throws {
        let wire =
            record(1, 1, beginBody(keep: true)) + record(4, 1, Self.paramsContent) + record(4, 1)
            + record(1, 2, beginBody(keep: true)) + record(4, 2, Self.paramsContent) + record(5, 1)
            + record(4, 2) + record(5, 2)
        #expect(
            try decode(wire) == [
                .begin(requestID: 1, role: .responder, keepConnection: true),
                .params(requestID: 1, Self.params),
                .begin(requestID: 2, role: .responder, keepConnection: true),
                .stdinEnd(requestID: 1),
                .params(requestID: 2, Self.params),
                .stdinEnd(requestID: 2),
            ]
        )
        let head = bytes("Content-type: text/html\r\n\r\n")
        let page = bytes(Self.page)
        let body = bytes("<html>\n<head> ... ")
        let end: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
        let reply =
            record(6, 1, head, padding: 5) + record(6, 2, page, padding: 3) + record(6, 2) + record(3, 2, end)
            + record(6, 1, body, padding: 6) + record(6, 1) + record(3, 1, end)
        #expect(
            try decodeResponse(reply) == [
                .stdout(requestID: 1, buffer(head)),
                .stdout(requestID: 2, buffer(page)),
                .stdoutEnd(requestID: 2),
                .endRequest(requestID: 2, appStatus: 0, protocolStatus: .requestComplete),
                .stdout(requestID: 1, buffer(body)),
                .stdoutEnd(requestID: 1),
                .endRequest(requestID: 1, appStatus: 0, protocolStatus: .requestComplete),
            ]
        )
    }
}
