import FastCGI
import NIOCore
import Testing

/// Every kind of bad input ends in its own typed error, never a trap, and errors are final.
@Suite struct MalformedTests {
    static let begin1 = record(1, 1, beginBody())

    func expectError(
        _ wire: [UInt8],
        _ kind: FastCGIError.Kind,
        limits: DecoderLimits = .init(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> FastCGIError? {
        let whole = fastCGIError { _ = try decode(wire, limits: limits) }
        #expect(whole?.kind == kind, sourceLocation: sourceLocation)
        let bytewise = fastCGIError { _ = try decodeBytewise(wire, limits: limits) }
        #expect(bytewise == whole, "one byte at a time gives the same error", sourceLocation: sourceLocation)
        return whole
    }

    @Test func wrongVersion() {
        var wire = Self.begin1
        wire += [2, 5, 0, 1, 0, 0, 0, 0]
        let error = expectError(wire, .unsupportedVersion(2))
        #expect(error?.streamOffset == 16)
        #expect(error?.recordType == 5)
        #expect(error?.requestID == 1)
        #expect(error?.description.contains("offset 16") == true)
        #expect(error?.description.contains("STDIN") == true)
    }

    @Test func garbageAndHTTP() {
        #expect(expectError(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), .unsupportedVersion(0x47)) != nil)
    }

    @Test func errorsAreFinal() throws {
        var decoder = RequestDecoder()
        var bad = buffer([9, 1, 0, 1, 0, 8, 0, 0])
        let first = fastCGIError { _ = try decoder.next(from: &bad) }
        var good = buffer(Self.begin1)
        let second = fastCGIError { _ = try decoder.next(from: &good) }
        #expect(first != nil)
        #expect(first == second)
    }

    /// A declared length of 2 GiB - 1 is rejected as soon as its 4-byte prefix is complete,
    /// before any of it is stored, even when the prefix is split across records.
    @Test func twoGiBLengthRejectedAtOnce() throws {
        let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
        let wire = Self.begin1 + record(4, 1, huge)
        let error = expectError(wire, .paramsTooLarge)
        #expect(error?.streamOffset == 16)

        // Value length huge, name small, split inside the value's length prefix across records.
        var decoder = RequestDecoder()
        #expect(try decode(Self.begin1 + record(4, 1, [1, 0xFF, 0xFF]), decoder: &decoder).count == 1)
        let split = fastCGIError { _ = try decode(record(4, 1, [0xFF, 0xFF]), decoder: &decoder) }
        #expect(split?.kind == .paramsTooLarge)

        // Exactly 2 GiB does not fit the 31-bit length, so 0x80000000 means length 0 in long form:
        // a long-form 0 name with a 2 GiB - 1 value.
        #expect(
            expectError(Self.begin1 + record(4, 1, [0x80, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]), .paramsTooLarge) != nil
        )
    }

    @Test func paramsOverLimit() {
        let limits = DecoderLimits(maxParamsBytes: 100)
        var params = ByteBuffer()
        RequestEncoder.writeNameValuePair(name: bytes("A"), value: [UInt8](repeating: 0x62, count: 60), into: &params)
        RequestEncoder.writeNameValuePair(name: bytes("B"), value: [UInt8](repeating: 0x62, count: 60), into: &params)
        // Two records of 63 bytes: the second would take the stream over 100.
        let p = array(params)
        let wire = Self.begin1 + record(4, 1, Array(p[..<63])) + record(4, 1, Array(p[63...]))
        #expect(expectError(wire, .paramsTooLarge, limits: limits)?.streamOffset == 16 + 8 + 63)
        // A declared length over the limit in one record is caught by the pair header check.
        #expect(expectError(Self.begin1 + record(4, 1, [1, 100, 0x41]), .paramsTooLarge, limits: limits) != nil)
        // Exactly at the limit is fine.
        let exact = Self.begin1 + record(4, 1, [1, 97, 0x41] + [UInt8](repeating: 0x62, count: 97)) + record(4, 1)
        #expect(fastCGIError { _ = try decode(exact, limits: limits) } == nil)
    }

    /// Unfinished params of all a connection's requests share one budget; finishing a request's
    /// params (or ending the request) gives its bytes back.
    @Test func pendingParamsOverTheConnectionBudget() throws {
        let limits = DecoderLimits(maxParamsBytes: 100, maxPendingParamsBytes: 150)
        let pair: [UInt8] = [1, 58, 0x41] + [UInt8](repeating: 0x62, count: 58)  // 61 bytes
        let begins = (1...3).flatMap { record(1, UInt16($0), beginBody()) }
        // Two unfinished requests hold 122 bytes; a third record of 61 would make 183.
        let wire = begins + record(4, 1, pair) + record(4, 2, pair) + record(4, 3, pair)
        let error = expectError(wire, .pendingParamsTooLarge, limits: limits)
        #expect(error?.requestID == 3)
        #expect(error?.streamOffset == 48 + 2 * 69)
        // Ending request 1's params frees its share: request 3 fits.
        let finished = begins + record(4, 1, pair) + record(4, 2, pair) + record(4, 1) + record(4, 3, pair)
        #expect(fastCGIError { _ = try decode(finished, limits: limits) } == nil)
        // So does ending request 1 itself (the server's END_REQUEST).
        var decoder = RequestDecoder(limits: limits)
        _ = try decode(begins + record(4, 1, pair) + record(4, 2, pair), decoder: &decoder)
        decoder.endRequest(1)
        #expect(fastCGIError { _ = try decode(record(4, 3, pair), decoder: &decoder) } == nil)
    }

    @Test func tooManyPairs() throws {
        let limits = DecoderLimits(maxParamsPairs: 3)
        let pair: [UInt8] = [1, 1, 0x41, 0x42]
        #expect(try decode(Self.begin1 + record(4, 1, pair + pair + pair) + record(4, 1), limits: limits).count == 2)
        #expect(
            expectError(Self.begin1 + record(4, 1, pair + pair + pair + pair), .tooManyParams, limits: limits) != nil
        )
    }

    @Test func duplicateBegin() {
        let error = expectError(Self.begin1 + Self.begin1, .duplicateBeginRequest)
        #expect(error?.streamOffset == 16)
        #expect(error?.requestID == 1)
    }

    @Test func tooManyActive() throws {
        let limits = DecoderLimits(maxActiveRequests: 2)
        let wire = record(1, 1, beginBody()) + record(1, 2, beginBody()) + record(1, 3, beginBody())
        #expect(expectError(wire, .tooManyActiveRequests, limits: limits)?.streamOffset == 32)
        // Ending one makes room.
        var decoder = RequestDecoder(limits: limits)
        _ = try decode(record(1, 1, beginBody()) + record(1, 2, beginBody()), decoder: &decoder)
        decoder.endRequest(1)
        #expect(try decode(record(1, 3, beginBody()), decoder: &decoder).count == 1)
        #expect(decoder.activeRequestCount == 2)
    }

    @Test func malformedBegin() {
        #expect(expectError(record(1, 1, [0, 1, 0, 0, 0, 0, 0]), .malformedBeginRequest) != nil)
        #expect(expectError(record(1, 1), .malformedBeginRequest) != nil)
    }

    @Test func truncatedPairAtEndOfParams() {
        // Value cut short.
        #expect(
            expectError(Self.begin1 + record(4, 1, [5, 3] + bytes("abc")) + record(4, 1), .malformedNameValuePair)
                != nil
        )
        // Cut inside a 4-byte length.
        #expect(expectError(Self.begin1 + record(4, 1, [0x80, 0]) + record(4, 1), .malformedNameValuePair) != nil)
        // Only a name length.
        #expect(expectError(Self.begin1 + record(4, 1, [3]) + record(4, 1), .malformedNameValuePair) != nil)
    }

    @Test func malformedGetValues() {
        #expect(expectError(record(9, 0, [4, 0] + bytes("AB")), .malformedNameValuePair) != nil)
    }

    /// Random garbage, and random corruptions of a valid stream, never trap and never hang.
    @Test func randomInputNeverTraps() {
        var random = SplitMix64(seed: 99)
        let valid = SplitTests.stream
        for round in 0..<3000 {
            var input: [UInt8]
            if round % 2 == 0 {
                input = (0..<Int.random(in: 0...300, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            } else {
                input = valid
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    input[Int.random(in: 0..<input.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            let limits = DecoderLimits(maxParamsBytes: 64, maxParamsPairs: 4, maxActiveRequests: 3)
            _ = fastCGIError { _ = try decode(input, cuts: [input.count / 3], limits: limits) }
            _ = fastCGIError { _ = try decodeResponse(input, cuts: [input.count / 2]) }
        }
    }

    @Test func responseDecoderErrors() {
        #expect(
            fastCGIError { _ = try decodeResponse(record(3, 1, [0, 0, 0, 0, 7, 0, 0, 0])) }?.kind
                == .unknownProtocolStatus(7)
        )
        #expect(fastCGIError { _ = try decodeResponse(record(3, 1, [0, 0, 0])) }?.kind == .malformedEndRequest)
        #expect(fastCGIError { _ = try decodeResponse(record(11, 0, [1])) }?.kind == .malformedUnknownType)
        #expect(fastCGIError { _ = try decodeResponse(record(1, 1, beginBody())) }?.kind == .unexpectedRecordType(1))
        #expect(fastCGIError { _ = try decodeResponse([3, 6, 0, 1, 0, 0, 0, 0]) }?.kind == .unsupportedVersion(3))
        #expect(fastCGIError { _ = try decodeResponse(record(10, 0, [9])) }?.kind == .malformedNameValuePair)
    }
}
