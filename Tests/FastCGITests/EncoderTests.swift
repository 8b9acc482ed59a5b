import FastCGI
import NIOCore
import Testing

/// Chunking, padding and the fixed-size records of both encoders.
@Suite struct EncoderTests {
    /// Reads the record headers of `wire`: (type, id, content length, padding length).
    func headers(_ wire: ByteBuffer) -> [(UInt8, UInt16, Int, Int)] {
        var copy = wire
        var result: [(UInt8, UInt16, Int, Int)] = []
        while let packed = copy.readInteger(as: UInt64.self) {
            let header = RecordHeader(packed: packed)
            result.append((header.type, header.requestID, Int(header.contentLength), Int(header.paddingLength)))
            copy.moveReaderIndex(forwardBy: Int(header.contentLength) + Int(header.paddingLength))
        }
        return result
    }

    @Test func stdoutChunksAt65535AndPadsTo8() throws {
        let body = (0..<(65535 * 2 + 10)).map { UInt8(truncatingIfNeeded: $0) }
        var wire = ByteBuffer()
        ResponseEncoder.writeStream(.stdout, requestID: 3, bytes: body, into: &wire)
        let found = headers(wire)
        #expect(found.map(\.2) == [65535, 65535, 10])
        #expect(found.map(\.3) == [1, 1, 6])
        #expect(found.allSatisfy { $0.0 == 6 && $0.1 == 3 && ($0.2 + $0.3) % 8 == 0 })
        #expect(wire.readableBytes == 3 * 8 + body.count + 8)
        #expect(normalize(try decodeResponse(array(wire))) == [.stdout(requestID: 3, buffer(body))])

        var fromBuffer = ByteBuffer()
        ResponseEncoder.writeStream(.stdout, requestID: 3, buffer: buffer(body), into: &fromBuffer)
        #expect(fromBuffer == wire)
        // A non-contiguous collection takes the slow path and writes the same bytes.
        var fromSequence = ByteBuffer()
        ResponseEncoder.writeStream(.stdout, requestID: 3, bytes: body.lazy.map { $0 }, into: &fromSequence)
        #expect(fromSequence == wire)
    }

    @Test func paddingForEveryLengthModulo8() {
        for length in 1...16 {
            var wire = ByteBuffer()
            ResponseEncoder.writeStream(.stderr, requestID: 1, bytes: [UInt8](repeating: 1, count: length), into: &wire)
            #expect(wire.readableBytes % 8 == 0)
            #expect(headers(wire).first?.3 == (8 - length % 8) % 8)
        }
    }

    @Test func emptyStreamWritesNothing() {
        var wire = ByteBuffer()
        ResponseEncoder.writeStream(.stdout, requestID: 1, bytes: [UInt8](), into: &wire)
        ResponseEncoder.writeStream(.stdout, requestID: 1, buffer: ByteBuffer(), into: &wire)
        RequestEncoder.writeStdin([UInt8](), requestID: 1, into: &wire)
        #expect(wire.readableBytes == 0)
        ResponseEncoder.writeStreamEnd(.stdout, requestID: 1, into: &wire)
        #expect(array(wire) == [1, 6, 0, 1, 0, 0, 0, 0])
    }

    @Test func fixedRecords() throws {
        var wire = ByteBuffer()
        ResponseEncoder.writeEndRequest(
            requestID: 0x0102,
            appStatus: 0xA0B0C0D0,
            protocolStatus: .unknownRole,
            into: &wire
        )
        #expect(array(wire) == [1, 3, 1, 2, 0, 8, 0, 0, 0xA0, 0xB0, 0xC0, 0xD0, 3, 0, 0, 0])
        wire.clear()
        ResponseEncoder.writeUnknownType(0x42, into: &wire)
        #expect(array(wire) == [1, 11, 0, 0, 0, 8, 0, 0, 0x42, 0, 0, 0, 0, 0, 0, 0])
        wire.clear()
        RequestEncoder.writeBeginRequest(requestID: 5, role: .filter, keepConnection: true, into: &wire)
        #expect(array(wire) == [1, 1, 0, 5, 0, 8, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0])
        wire.clear()
        RequestEncoder.writeAbortRequest(requestID: 5, into: &wire)
        #expect(array(wire) == [1, 2, 0, 5, 0, 0, 0, 0])
    }

    @Test func getValuesResultIsOneRecord() throws {
        var wire = ByteBuffer()
        let values = [("FCGI_MAX_CONNS", "1024"), ("FCGI_MAX_REQS", "1024"), ("FCGI_MPXS_CONNS", "1")]
        ResponseEncoder.writeGetValuesResult(values, into: &wire)
        let found = headers(wire)
        #expect(found.count == 1)
        #expect(found.first?.0 == 10 && found.first?.1 == 0)
        #expect(wire.readableBytes % 8 == 0)
        #expect(try decodeResponse(array(wire)) == [.getValuesResult(values)])
        // Oversized answers drop what does not fit instead of spilling into a second record.
        var big = ByteBuffer()
        let huge = [
            ("A", String(repeating: "x", count: 40_000)), ("B", String(repeating: "y", count: 40_000)), ("C", "1"),
        ]
        ResponseEncoder.writeGetValuesResult(huge, into: &big)
        #expect(headers(big).count == 1)
        #expect(try decodeResponse(array(big)) == [.getValuesResult([huge[0], huge[2]])])
    }

    @Test func paramsStraddleRecords() throws {
        let params = (0..<10).map { ("NAME_\($0)", String(repeating: "v", count: 20_000)) }
        var wire = ByteBuffer()
        RequestEncoder.writeParams(params, requestID: 2, into: &wire)
        let found = headers(wire)
        #expect(found.map(\.2) == [65535, 65535, 65535, found[3].2, 0])
        #expect(found.allSatisfy { $0.0 == 4 && ($0.2 + $0.3) % 8 == 0 })
        let decoded = try decode(record(1, 2, beginBody()) + array(wire))
        #expect(decoded.last == .params(requestID: 2, NameValuePairs(params)))
    }

    @Test func rawRecordAndNameValuePair() {
        var wire = ByteBuffer()
        RequestEncoder.writeRecord(
            type: 200,
            requestID: 7,
            content: [1, 2, 3],
            paddingLength: 2,
            version: 9,
            into: &wire
        )
        #expect(array(wire) == [9, 200, 0, 7, 0, 3, 2, 0, 1, 2, 3, 0xAA, 0xAA])
        wire.clear()
        RequestEncoder.writeNameValuePair(
            name: [UInt8](repeating: 0x41, count: 200),
            value: bytes("x"),
            into: &wire
        )
        #expect(array(wire).prefix(5) == [0x80, 0, 0, 200, 1])
    }

    @Test func roleAndHeaderValues() {
        #expect(Role.responder.rawValue == 1 && Role.authorizer.rawValue == 2 && Role.filter.rawValue == 3)
        #expect(Role(rawValue: 99).description == "role 99")
        let header = RecordHeader(type: 5, requestID: 0xBEEF, contentLength: 0x1234, paddingLength: 7)
        #expect(RecordHeader(packed: header.packed) == header)
        #expect(RecordType.unknownType.rawValue == 11 && RecordType.data.rawValue == 8)
    }
}
