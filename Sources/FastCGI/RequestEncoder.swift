import NIOCore

/// Writes the records a web server sends to an application: the client side, used by the
/// project's tests, test client and load generator. `writeRecord` and `writeNameValuePair`
/// also write deliberately odd or hostile records.
public enum RequestEncoder {
    /// Writes `FCGI_BEGIN_REQUEST` (§5.1).
    public static func writeBeginRequest(
        requestID: UInt16,
        role: Role = .responder,
        keepConnection: Bool,
        into buffer: inout ByteBuffer
    ) {
        RecordWriter.writeHeader(
            type: RecordType.beginRequest.rawValue,
            requestID: requestID,
            contentLength: 8,
            paddingLength: 0,
            into: &buffer
        )
        buffer.writeInteger(UInt64(role.rawValue) &<< 48 | UInt64(keepConnection ? 1 : 0) &<< 40)
    }

    /// Writes the whole PARAMS stream: the pairs, chunked into records of at most 65535 bytes
    /// (pairs may straddle records, as the spec allows), then the empty PARAMS record.
    public static func writeParams(_ params: [(String, String)], requestID: UInt16, into buffer: inout ByteBuffer) {
        var stream = ByteBuffer()
        RecordWriter.encodePairs(params, into: &stream)
        stream.withUnsafeReadableBytes {
            RecordWriter.writeChunked(type: RecordType.params.rawValue, requestID: requestID, bytes: $0, into: &buffer)
        }
        RecordWriter.writeHeader(
            type: RecordType.params.rawValue,
            requestID: requestID,
            contentLength: 0,
            paddingLength: 0,
            into: &buffer
        )
    }

    /// Writes request body bytes as STDIN records (chunked, padded to 8); empty input writes nothing.
    public static func writeStdin(_ bytes: some Collection<UInt8>, requestID: UInt16, into buffer: inout ByteBuffer) {
        RecordWriter.writeChunked(
            type: RecordType.stdin.rawValue,
            requestID: requestID,
            collection: bytes,
            into: &buffer
        )
    }

    /// Writes the empty STDIN record that ends the request body.
    public static func writeStdinEnd(requestID: UInt16, into buffer: inout ByteBuffer) {
        RecordWriter.writeHeader(
            type: RecordType.stdin.rawValue,
            requestID: requestID,
            contentLength: 0,
            paddingLength: 0,
            into: &buffer
        )
    }

    /// Writes `FCGI_ABORT_REQUEST` (§5.4).
    public static func writeAbortRequest(requestID: UInt16, into buffer: inout ByteBuffer) {
        RecordWriter.writeHeader(
            type: RecordType.abortRequest.rawValue,
            requestID: requestID,
            contentLength: 0,
            paddingLength: 0,
            into: &buffer
        )
    }

    /// Writes `FCGI_GET_VALUES` on request id 0 (§4.1): the names with empty values, unpadded.
    public static func writeGetValues(_ names: [String], into buffer: inout ByteBuffer) {
        var content = ByteBuffer()
        RecordWriter.encodePairs(names.map { ($0, "") }, into: &content)
        RecordWriter.writeHeader(
            type: RecordType.getValues.rawValue,
            requestID: 0,
            contentLength: content.readableBytes,
            paddingLength: 0,
            into: &buffer
        )
        buffer.writeBuffer(&content)
    }

    /// Writes one raw record with any type, version and padding (padding bytes are 0xAA so tests
    /// notice if they leak). `content` must be at most 65535 bytes; that is the caller's
    /// responsibility (it traps otherwise, this is a test tool).
    public static func writeRecord(
        type: UInt8,
        requestID: UInt16,
        content: some Collection<UInt8>,
        paddingLength: UInt8 = 0,
        version: UInt8 = 1,
        into buffer: inout ByteBuffer
    ) {
        precondition(content.count <= RecordHeader.maxContentLength, "record content over 65535 bytes")
        RecordWriter.writeHeader(
            type: type,
            requestID: requestID,
            contentLength: content.count,
            paddingLength: paddingLength,
            version: version,
            into: &buffer
        )
        buffer.writeBytes(content)
        buffer.writeRepeatingByte(0xAA, count: Int(paddingLength))
    }

    /// Writes one name-value pair (§3.4) without a record around it. `forceLongLengths` uses the
    /// 4-byte length form even for lengths under 128, which the spec allows and decoders must accept.
    public static func writeNameValuePair(
        name: some Collection<UInt8>,
        value: some Collection<UInt8>,
        forceLongLengths: Bool = false,
        into buffer: inout ByteBuffer
    ) {
        RecordWriter.writeLength(name.count, forceLong: forceLongLengths, into: &buffer)
        RecordWriter.writeLength(value.count, forceLong: forceLongLengths, into: &buffer)
        buffer.writeBytes(name)
        buffer.writeBytes(value)
    }
}
