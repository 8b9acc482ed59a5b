import FastCGI
import NIOCore
import Testing

/// The decoder's lenient, multiplexed behaviour (§3.3) and its resource rules.
@Suite struct DecoderBehaviourTests {
    static let begin1 = record(1, 1, beginBody())

    @Test func recordsForInactiveIDsAreIgnored() throws {
        let wire =
            record(4, 7, [1, 1, 0x41, 0x42]) + record(4, 7) + record(5, 7, bytes("body")) + record(5, 7)
            + record(8, 7, bytes("data")) + record(8, 7) + record(2, 7) + Self.begin1 + record(5, 1, bytes("x"))
        #expect(try decode(wire) == [.begin(requestID: 1, role: .responder, keepConnection: false), stdin(1, "x")])
    }

    @Test func endedRequestIsIgnoredAndItsIDReusable() throws {
        var decoder = RequestDecoder()
        let first = Self.begin1 + record(4, 1, [1, 1, 0x41, 0x42]) + record(4, 1) + record(5, 1, bytes("one"))
        #expect(try decode(first, decoder: &decoder).count == 3)
        #expect(decoder.isActive(1))
        decoder.endRequest(1)
        #expect(!decoder.isActive(1))
        #expect(decoder.activeRequestCount == 0)
        // Late records for the ended request leak nowhere.
        let late = record(5, 1, bytes("late")) + record(5, 1) + record(4, 1, [1, 1, 0x58, 0x59]) + record(2, 1)
        #expect(try decode(late, decoder: &decoder).isEmpty)
        // The id begins again with fresh state.
        let second =
            record(1, 1, beginBody(keep: true)) + record(4, 1, [1, 1, 0x43, 0x44]) + record(4, 1) + record(5, 1)
        #expect(
            try decode(second, decoder: &decoder) == [
                .begin(requestID: 1, role: .responder, keepConnection: true),
                .params(requestID: 1, NameValuePairs([("C", "D")])),
                .stdinEnd(requestID: 1),
            ]
        )
    }

    /// A server ending a request in the middle of its STDIN record: the rest is skipped.
    @Test func endRequestInTheMiddleOfARecord() throws {
        var decoder = RequestDecoder()
        let wire = Self.begin1 + record(5, 1, bytes("abcdefgh"), padding: 3) + record(1, 2, beginBody())
        var first = buffer(Array(wire[..<28]))
        #expect(try decoder.next(from: &first) != nil)
        #expect(try decoder.next(from: &first) == stdin(1, "abcd"))
        decoder.endRequest(1)
        var rest = buffer(Array(wire[28...]))
        #expect(try decoder.next(from: &rest) == .begin(requestID: 2, role: .responder, keepConnection: false))
    }

    @Test func repeatedEndsAndAbortsAreReportedOnce() throws {
        let wire =
            Self.begin1 + record(4, 1) + record(4, 1) + record(4, 1, [1, 1, 0x41, 0x42]) + record(5, 1) + record(5, 1)
            + record(5, 1, bytes("after end")) + record(8, 1) + record(8, 1) + record(2, 1) + record(2, 1)
        #expect(
            try decode(wire) == [
                .begin(requestID: 1, role: .responder, keepConnection: false),
                .params(requestID: 1, NameValuePairs([])),
                .stdinEnd(requestID: 1),
                .dataEnd(requestID: 1),
                .abort(requestID: 1),
            ]
        )
    }

    /// The STDIN end is reported at its header; its padding still belongs to the record, so
    /// the stream is at a record boundary only once the padding is in.
    @Test func recordBoundaryCountsPaddingAndPartialHeaders() throws {
        var decoder = RequestDecoder()
        #expect(decoder.isAtRecordBoundary)
        _ = try decode(Self.begin1 + record(4, 1), decoder: &decoder)
        #expect(decoder.isAtRecordBoundary)
        let events = try decode([1, 5, 0, 1, 0, 0, 8, 0], decoder: &decoder)  // empty STDIN, 8 padding bytes to come
        #expect(events == [.stdinEnd(requestID: 1)])
        #expect(!decoder.isAtRecordBoundary)
        _ = try decode([UInt8](repeating: 0, count: 7), decoder: &decoder)
        #expect(!decoder.isAtRecordBoundary)
        _ = try decode([0, 1, 5, 0], decoder: &decoder)  // the last padding byte, then half a header
        #expect(!decoder.isAtRecordBoundary)
        _ = try decode([1, 0, 0, 0, 0], decoder: &decoder)
        #expect(decoder.isAtRecordBoundary)
    }

    @Test func paddingIsAcceptedOnEveryRecordType() throws {
        for padding in [0, 1, 7, 8, 255] {
            for paddingByte: UInt8 in [0, 0xAA, 0xFF] {
                func r(_ type: UInt8, _ id: UInt16, _ content: [UInt8] = []) -> [UInt8] {
                    record(type, id, content, padding: padding, paddingByte: paddingByte)
                }
                let wire =
                    r(1, 1, beginBody(keep: true)) + r(4, 1, [1, 1, 0x41, 0x42]) + r(4, 1) + r(8, 1, bytes("d"))
                    + r(8, 1) + r(5, 1, bytes("s")) + r(5, 1) + r(2, 1) + r(9, 0, [1, 0, 0x4E]) + r(0x33, 0)
                    + r(0x33, 1, [1, 2]) + r(3, 1, [0, 0, 0, 0, 0, 0, 0, 0])
                let expected: [RequestEvent] = [
                    .begin(requestID: 1, role: .responder, keepConnection: true),
                    .params(requestID: 1, NameValuePairs([("A", "B")])),
                    .data(requestID: 1, buffer(bytes("d"))),
                    .dataEnd(requestID: 1),
                    stdin(1, "s"),
                    .stdinEnd(requestID: 1),
                    .abort(requestID: 1),
                    .getValues(names: ["N"]),
                    .unknownManagementRecord(type: 0x33),
                ]
                #expect(try decode(wire) == expected, "padding \(padding)")
                #expect(normalize(try decodeBytewise(wire)) == expected, "padding \(padding)")
            }
        }
    }

    @Test func reservedHeaderByteIsIgnoredAndLargeIDsWork() throws {
        var wire = record(1, 65535, beginBody()) + record(4, 65535) + record(5, 65535)
        wire[7] = 0xEE
        wire[16 + 7] = 0x01
        #expect(
            try decode(wire) == [
                .begin(requestID: 65535, role: .responder, keepConnection: false),
                .params(requestID: 65535, NameValuePairs([])),
                .stdinEnd(requestID: 65535),
            ]
        )
    }

    @Test func longBeginBodyAndAnyRole() throws {
        let wire = record(1, 9, [0, 99, 1, 0, 0, 0, 0, 0, 0xDE, 0xAD], padding: 6)
        #expect(try decode(wire) == [.begin(requestID: 9, role: Role(rawValue: 99), keepConnection: true)])
    }

    @Test func fourByteLengthsForShortStrings() throws {
        var params = ByteBuffer()
        RequestEncoder.writeNameValuePair(
            name: bytes("SHORT"),
            value: bytes("v"),
            forceLongLengths: true,
            into: &params
        )
        RequestEncoder.writeNameValuePair(name: bytes("EMPTY"), value: [], forceLongLengths: true, into: &params)
        #expect(array(params).prefix(8) == [0x80, 0, 0, 5, 0x80, 0, 0, 1])
        let wire = Self.begin1 + record(4, 1, array(params)) + record(4, 1)
        #expect(try decode(wire).last == .params(requestID: 1, NameValuePairs([("SHORT", "v"), ("EMPTY", "")])))
    }

    @Test func longNamesEmptyValuesAnd200KBValue() throws {
        let longName = String(repeating: "N", count: 300)
        let bigValue = String(repeating: "v", count: 200_000)
        let params = [(longName, ""), ("BIG", bigValue), ("", "empty name"), ("E", "")]
        var wire = ByteBuffer()
        RequestEncoder.writeBeginRequest(requestID: 1, keepConnection: false, into: &wire)
        RequestEncoder.writeParams(params, requestID: 1, into: &wire)
        let events = try decode(array(wire), cuts: [70_000, 140_001])
        guard case .params(1, let pairs)? = events.last else {
            Issue.record("no params")
            return
        }
        #expect(pairs == NameValuePairs(params))
        #expect(pairs["BIG"]?.count == 200_000)
        #expect(pairs[longName] == "")
        #expect(pairs.count == 4)
        #expect(pairs.pairs.map(\.name) == [longName, "BIG", "", "E"])
    }

    @Test func layoutPointsIntoStorage() throws {
        let wire = Self.begin1 + record(4, 1, [1, 2] + bytes("AXY") + [2, 0] + bytes("BC")) + record(4, 1)
        guard case .params(_, let pairs)? = try decode(wire).last else {
            Issue.record("no params")
            return
        }
        #expect(pairs.layout.count == 8)
        for index in stride(from: 0, to: pairs.layout.count, by: 2) {
            #expect(Int(pairs.layout[index]) + Int(pairs.layout[index + 1]) <= pairs.storage.count)
        }
        #expect(pairs.pairs.map { "\($0.name)=\($0.value)" } == ["A=XY", "BC="])
    }

    @Test func fiftyThousandEmptyRecords() throws {
        var wire = Self.begin1
        let emptyStdin = record(5, 1)
        let emptyParams = record(4, 1)
        let emptyUnknown = record(0x77, 1)
        let emptyInactive = record(5, 2)
        for index in 0..<50_000 {
            switch index % 4 {
            case 0: wire += emptyStdin
            case 1: wire += emptyParams
            case 2: wire += emptyUnknown
            default: wire += emptyInactive
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let events = try decode(wire)
        #expect(clock.now - start < .seconds(2))
        #expect(
            events == [
                .begin(requestID: 1, role: .responder, keepConnection: false),
                .stdinEnd(requestID: 1),
                .params(requestID: 1, NameValuePairs([])),
            ]
        )
        // 50,000 empty management records each yield an event, and nothing accumulates.
        var decoder = RequestDecoder()
        var many = ByteBuffer()
        for _ in 0..<50_000 { RequestEncoder.writeRecord(type: 0x77, requestID: 0, content: [], into: &many) }
        var count = 0
        while let event = try decoder.next(from: &many) {
            #expect(event == .unknownManagementRecord(type: 0x77))
            count += 1
        }
        #expect(count == 50_000)
    }

    @Test func stdinSlicesShareStorageWithTheInput() throws {
        var decoder = RequestDecoder()
        let body = [UInt8](repeating: 0x5A, count: 65535)
        var input = buffer(Self.begin1 + record(5, 1, body, padding: 1) + record(8, 1, bytes("filter")))
        let base = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        _ = try decoder.next(from: &input)
        guard case .stdin(1, let slice)? = try decoder.next(from: &input) else {
            Issue.record("no stdin")
            return
        }
        #expect(slice.readableBytes == 65535)
        #expect(slice.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == base + 16 + 8)
        guard case .data(1, let data)? = try decoder.next(from: &input) else {
            Issue.record("no data")
            return
        }
        #expect(data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == base + 16 + 8 + 65536 + 8)
    }

    @Test func getValuesIgnoresValuesAndAcceptsNoPadding() throws {
        var wire = ByteBuffer()
        RequestEncoder.writeGetValues(["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"], into: &wire)
        RequestEncoder.writeRecord(type: 9, requestID: 0, content: [1, 1, 0x41, 0x42], into: &wire)
        RequestEncoder.writeRecord(type: 9, requestID: 0, content: [], into: &wire)
        #expect(
            try decode(array(wire)) == [
                .getValues(names: ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"]),
                .getValues(names: ["A"]),
                .getValues(names: []),
            ]
        )
        // GET_VALUES on a non-zero id is not a management record: ignored.
        #expect(try decode(record(9, 5, [1, 0, 0x41])).isEmpty)
        // BEGIN_REQUEST on id 0 is an unknown management record.
        #expect(try decode(record(1, 0, beginBody())) == [.unknownManagementRecord(type: 1)])
    }

    @Test func streamOffsetCountsEverything() throws {
        var decoder = RequestDecoder()
        let wire = Self.begin1 + record(4, 1, [1, 1, 0x41, 0x42], padding: 4) + record(4, 1, padding: 200)
        _ = try decode(Array(wire.dropLast(3)), decoder: &decoder)
        #expect(decoder.streamOffset == wire.count - 3)
    }
}

/// Many multiplexed requests: the request table switches to its dictionary index and back.
@Suite struct MultiplexTests {
    @Test func hundredsOfInterleavedRequests() throws {
        var random = SplitMix64(seed: 1234)
        var decoder = RequestDecoder()
        var active: Set<UInt16> = []
        var bodies: [UInt16: [UInt8]] = [:]
        for round in 0..<4000 {
            var wire: [UInt8] = []
            let id = UInt16.random(in: 1...200, using: &random)
            if !active.contains(id) {
                wire += record(1, id, beginBody(keep: true))
                active.insert(id)
            } else {
                switch Int.random(in: 0...3, using: &random) {
                case 0:
                    decoder.endRequest(id)
                    active.remove(id)
                    #expect(!decoder.isActive(id))
                    continue
                default:
                    let byte = UInt8(truncatingIfNeeded: round)
                    wire += record(5, id, [byte])
                    bodies[id, default: []].append(byte)
                }
            }
            for event in try decode(wire, decoder: &decoder) {
                switch event {
                case .begin(let begun, _, _): #expect(begun == id)
                case .stdin(let got, let chunk):
                    #expect(got == id)
                    #expect(array(chunk) == [bodies[id]!.last!])
                default: Issue.record("unexpected \(event)")
                }
            }
            #expect(decoder.activeRequestCount == active.count)
        }
        for id in active { #expect(decoder.isActive(id)) }
        for id in UInt16(1)...200 where !active.contains(id) { #expect(!decoder.isActive(id)) }
        // End them all; the table shrinks back to its linear form and still works.
        for id in active { decoder.endRequest(id) }
        #expect(decoder.activeRequestCount == 0)
        #expect(try decode(record(1, 5, beginBody()) + record(5, 5, [1]), decoder: &decoder).count == 2)
    }
}
