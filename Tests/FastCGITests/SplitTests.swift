import FastCGI
import NIOCore
import Testing

/// Any split of the same stream must yield the same events.
@Suite struct SplitTests {
    /// Two interleaved requests with padding, a split pair (inside a 4-byte length), a body,
    /// an abort, a management query and an unknown management record.
    static let stream: [UInt8] = {
        var params1 = ByteBuffer()
        RequestEncoder.writeNameValuePair(name: bytes("REQUEST_METHOD"), value: bytes("POST"), into: &params1)
        RequestEncoder.writeNameValuePair(
            name: bytes("Q"),
            value: bytes("a=1"),
            forceLongLengths: true,
            into: &params1
        )
        let p1 = array(params1)
        var wire = record(1, 1, beginBody(keep: true), padding: 3)
        wire += record(4, 1, Array(p1[..<17]), padding: 1)  // cut inside the 4-byte length of "Q"
        wire += record(1, 300, beginBody(role: 99))
        wire += record(4, 1, Array(p1[17...]), padding: 2)
        wire += record(4, 300, [1, 0, 0x41])
        wire += record(4, 1)
        wire += record(9, 0, [4, 0] + bytes("ABCD"), padding: 2)
        wire += record(5, 1, bytes("hello "), padding: 2)
        wire += record(4, 300, padding: 4)
        wire += record(5, 1, bytes("world"))
        wire += record(2, 300)
        wire += record(0x42, 0, [1, 2, 3])
        wire += record(5, 1, padding: 5)
        return wire
    }()

    static let expected: [RequestEvent] = [
        .begin(requestID: 1, role: .responder, keepConnection: true),
        .begin(requestID: 300, role: Role(rawValue: 99), keepConnection: false),
        .params(requestID: 1, NameValuePairs([("REQUEST_METHOD", "POST"), ("Q", "a=1")])),
        .getValues(names: ["ABCD"]),
        stdin(1, "hello "),
        .params(requestID: 300, NameValuePairs([("A", "")])),
        stdin(1, "world"),
        .abort(requestID: 300),
        .unknownManagementRecord(type: 0x42),
        .stdinEnd(requestID: 1),
    ]

    @Test func wholeStream() throws {
        #expect(try decode(Self.stream) == Self.expected)
    }

    @Test func everySingleSplitPoint() throws {
        for cut in 0...Self.stream.count {
            let events = try decode(Self.stream, cuts: [cut])
            #expect(normalize(events) == Self.expected, "split at \(cut)")
        }
    }

    @Test func everyPairOfSplitPoints() throws {
        let count = Self.stream.count
        var failures = 0
        for first in 0...count {
            for second in first...count {
                let events = try decode(Self.stream, cuts: [first, second])
                if normalize(events) != Self.expected { failures += 1 }
            }
        }
        #expect(failures == 0)
    }

    @Test func oneByteAtATime() throws {
        #expect(normalize(try decodeBytewise(Self.stream)) == Self.expected)
    }

    @Test func randomManySplits() throws {
        var random = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let cuts = (0..<Int.random(in: 1...12, using: &random)).map { _ in
                Int.random(in: 0...Self.stream.count, using: &random)
            }
            #expect(normalize(try decode(Self.stream, cuts: cuts)) == Self.expected, "cuts \(cuts)")
        }
    }

    /// STDIN content is reported as soon as it arrives, not when its record is complete.
    @Test func partialStdinIsYieldedImmediately() throws {
        var decoder = RequestDecoder()
        let body = [UInt8](repeating: 0x61, count: 65535)
        let wire = record(1, 1, beginBody()) + record(5, 1, body, padding: 1)
        var first = buffer(Array(wire[..<(16 + 8 + 1000)]))
        #expect(try decoder.next(from: &first) == .begin(requestID: 1, role: .responder, keepConnection: false))
        guard case .stdin(1, let chunk)? = try decoder.next(from: &first) else {
            Issue.record("expected a partial stdin chunk")
            return
        }
        #expect(chunk.readableBytes == 1000)
        #expect(try decoder.next(from: &first) == nil)
        var rest = buffer(Array(wire[(16 + 8 + 1000)...]))
        guard case .stdin(1, let tail)? = try decoder.next(from: &rest) else {
            Issue.record("expected the rest of stdin")
            return
        }
        #expect(tail.readableBytes == 65535 - 1000)
        #expect(try decoder.next(from: &rest) == nil)
        #expect(rest.readableBytes == 0)
        #expect(decoder.streamOffset == wire.count)
    }

    @Test func manyRecordsInOneBuffer() throws {
        var wire: [UInt8] = []
        var expected: [RequestEvent] = []
        for id in UInt16(1)...200 {
            wire += record(1, id, beginBody(keep: true)) + record(4, id, [1, 1, 0x4e, 0x56]) + record(4, id)
            expected += [
                .begin(requestID: id, role: .responder, keepConnection: true),
                .params(requestID: id, NameValuePairs([("N", "V")])),
            ]
        }
        #expect(try decode(wire) == expected)
    }
}
