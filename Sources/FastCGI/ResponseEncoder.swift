import NIOCore

/// Writes the records an application sends to the web server (STDOUT, STDERR, END_REQUEST,
/// GET_VALUES_RESULT, UNKNOWN_TYPE).
///
/// Everything is written into a caller-supplied `ByteBuffer`, so a server can batch several
/// records into one write and allocates nothing beyond the buffer's growth.
public enum ResponseEncoder {
    /// Writes stream content (normally `.stdout` or `.stderr`) as records of at most 65535 bytes,
    /// each padded to a multiple of 8. Empty `bytes` writes nothing: ending a stream is a separate,
    /// explicit step (`writeStreamEnd`).
    public static func writeStream(
        _ type: RecordType,
        requestID: UInt16,
        bytes: some Collection<UInt8>,
        into buffer: inout ByteBuffer
    ) {
        RecordWriter.writeChunked(type: type.rawValue, requestID: requestID, collection: bytes, into: &buffer)
    }

    /// Writes the readable bytes of `bytes` as stream records, like the collection variant.
    public static func writeStream(
        _ type: RecordType,
        requestID: UInt16,
        buffer bytes: ByteBuffer,
        into buffer: inout ByteBuffer
    ) {
        bytes.withUnsafeReadableBytes {
            RecordWriter.writeChunked(type: type.rawValue, requestID: requestID, bytes: $0, into: &buffer)
        }
    }

    /// Writes the empty record that ends a stream (§3.3).
    public static func writeStreamEnd(_ type: RecordType, requestID: UInt16, into buffer: inout ByteBuffer) {
        RecordWriter.writeHeader(
            type: type.rawValue,
            requestID: requestID,
            contentLength: 0,
            paddingLength: 0,
            into: &buffer
        )
    }

    /// Writes `FCGI_END_REQUEST` (§5.5): the last record of a request.
    public static func writeEndRequest(
        requestID: UInt16,
        appStatus: UInt32,
        protocolStatus: ProtocolStatus,
        into buffer: inout ByteBuffer
    ) {
        buffer.reserveCapacity(minimumWritableBytes: 16)
        RecordWriter.writeHeader(
            type: RecordType.endRequest.rawValue,
            requestID: requestID,
            contentLength: 8,
            paddingLength: 0,
            into: &buffer
        )
        buffer.writeInteger(appStatus)
        buffer.writeInteger(UInt32(protocolStatus.rawValue) &<< 24)
    }

    /// Writes one `FCGI_GET_VALUES_RESULT` record on request id 0 (§4.1).
    ///
    /// The answer must be a single record, so pairs that would push it past 65535 bytes are left
    /// out (the spec lets an application omit variables).
    public static func writeGetValuesResult(_ values: [(String, String)], into buffer: inout ByteBuffer) {
        var content = ByteBuffer()
        for pair in values {
            let before = content.writerIndex
            RecordWriter.encodePairs([pair], into: &content)
            if content.readableBytes > RecordHeader.maxContentLength {
                content.moveWriterIndex(to: before)
            }
        }
        let padding = RecordHeader.padding(forContentLength: content.readableBytes)
        RecordWriter.writeHeader(
            type: RecordType.getValuesResult.rawValue,
            requestID: 0,
            contentLength: content.readableBytes,
            paddingLength: padding,
            into: &buffer
        )
        buffer.writeBuffer(&content)
        buffer.writeRepeatingByte(0, count: Int(padding))
    }

    /// Writes `FCGI_UNKNOWN_TYPE` (§4.2), echoing a management record type the application does not know.
    public static func writeUnknownType(_ type: UInt8, into buffer: inout ByteBuffer) {
        RecordWriter.writeHeader(
            type: RecordType.unknownType.rawValue,
            requestID: 0,
            contentLength: 8,
            paddingLength: 0,
            into: &buffer
        )
        buffer.writeInteger(UInt64(type) &<< 56)
    }
}
