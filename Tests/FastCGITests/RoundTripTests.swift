import FastCGI
import NIOCore
import Testing

/// Random traffic through the encoders and back through the decoders must come out unchanged.
@Suite struct RoundTripTests {
    static func randomString(_ random: inout SplitMix64, maxLength: Int) -> String {
        let length = Int.random(in: 0...maxLength, using: &random)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz0123456789/=&?.-é")
        return String((0..<length).map { _ in alphabet.randomElement(using: &random)! })
    }

    static func randomBytes(_ random: inout SplitMix64, count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func requests(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        var wire = ByteBuffer()
        var expected: [RequestEvent] = []
        let ids = (0..<Int.random(in: 1...6, using: &random)).map { _ in UInt16.random(in: 1...65535, using: &random) }
        let uniqueIDs = Array(Set(ids))
        for id in uniqueIDs {
            let keep = Bool.random(using: &random)
            let role = Role(rawValue: UInt16.random(in: 0...4, using: &random))
            RequestEncoder.writeBeginRequest(requestID: id, role: role, keepConnection: keep, into: &wire)
            expected.append(.begin(requestID: id, role: role, keepConnection: keep))
        }
        for id in uniqueIDs {
            let params = (0..<Int.random(in: 0...40, using: &random)).map { _ in
                (
                    Self.randomString(&random, maxLength: Bool.random(using: &random) ? 20 : 300),
                    Self.randomString(&random, maxLength: Int.random(in: 0...3, using: &random) == 0 ? 70_000 : 50)
                )
            }
            RequestEncoder.writeParams(params, requestID: id, into: &wire)
            expected.append(.params(requestID: id, NameValuePairs(params)))
            let body = Self.randomBytes(&random, count: Int.random(in: 0...140_000, using: &random))
            RequestEncoder.writeStdin(body, requestID: id, into: &wire)
            RequestEncoder.writeStdinEnd(requestID: id, into: &wire)
            if !body.isEmpty { expected.append(.stdin(requestID: id, buffer(body))) }
            expected.append(.stdinEnd(requestID: id))
            if Bool.random(using: &random) {
                RequestEncoder.writeAbortRequest(requestID: id, into: &wire)
                expected.append(.abort(requestID: id))
            }
        }
        let names = (0..<Int.random(in: 0...5, using: &random)).map { _ in Self.randomString(&random, maxLength: 30) }
        RequestEncoder.writeGetValues(names, into: &wire)
        expected.append(.getValues(names: names))

        let input = array(wire)
        let cuts = (0..<Int.random(in: 0...30, using: &random)).map { _ in
            Int.random(in: 0...input.count, using: &random)
        }
        #expect(normalize(try decode(input, cuts: cuts, limits: DecoderLimits(maxParamsBytes: 8 << 20))) == expected)
    }

    @Test(arguments: [11, 12, 13, 14, 15] as [UInt64])
    func responses(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        var wire = ByteBuffer()
        var expected: [ResponseEvent] = []
        for _ in 0..<Int.random(in: 1...30, using: &random) {
            let id = UInt16.random(in: 1...65535, using: &random)
            switch Int.random(in: 0...5, using: &random) {
            case 0, 1:
                let body = Self.randomBytes(&random, count: Int.random(in: 1...150_000, using: &random))
                let useBuffer = Bool.random(using: &random)
                if useBuffer {
                    ResponseEncoder.writeStream(.stdout, requestID: id, buffer: buffer(body), into: &wire)
                } else {
                    ResponseEncoder.writeStream(.stdout, requestID: id, bytes: body, into: &wire)
                }
                ResponseEncoder.writeStreamEnd(.stdout, requestID: id, into: &wire)
                expected += [.stdout(requestID: id, buffer(body)), .stdoutEnd(requestID: id)]
            case 2:
                let log = Self.randomBytes(&random, count: Int.random(in: 1...300, using: &random))
                ResponseEncoder.writeStream(.stderr, requestID: id, bytes: log[...], into: &wire)
                ResponseEncoder.writeStreamEnd(.stderr, requestID: id, into: &wire)
                expected += [.stderr(requestID: id, buffer(log)), .stderrEnd(requestID: id)]
            case 3:
                let status = UInt32.random(in: 0...UInt32.max, using: &random)
                let protocolStatus = ProtocolStatus(rawValue: UInt8.random(in: 0...3, using: &random))!
                ResponseEncoder.writeEndRequest(
                    requestID: id,
                    appStatus: status,
                    protocolStatus: protocolStatus,
                    into: &wire
                )
                expected.append(.endRequest(requestID: id, appStatus: status, protocolStatus: protocolStatus))
            case 4:
                let values = (0..<Int.random(in: 0...4, using: &random)).map { _ in
                    (Self.randomString(&random, maxLength: 20), String(Int.random(in: 0...1000, using: &random)))
                }
                ResponseEncoder.writeGetValuesResult(values, into: &wire)
                expected.append(.getValuesResult(values))
            default:
                let type = UInt8.random(in: 0...255, using: &random)
                ResponseEncoder.writeUnknownType(type, into: &wire)
                expected.append(.unknownType(type))
            }
        }
        let input = array(wire)
        let cuts = (0..<Int.random(in: 0...30, using: &random)).map { _ in
            Int.random(in: 0...input.count, using: &random)
        }
        #expect(normalize(try decodeResponse(input, cuts: cuts)) == normalize(expected))
    }
}
