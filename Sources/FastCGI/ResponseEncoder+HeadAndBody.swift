import NIOCore

extension ResponseEncoder {
    /// Writes a response head followed by body bytes as one stream, filling records up to
    /// 65535 bytes, so a small response is a single `FCGI_STDOUT` record and the body is
    /// never copied to join it to its head.
    public static func writeStream(
        _ type: RecordType,
        requestID: UInt16,
        head: [UInt8],
        body: [UInt8],
        into buffer: inout ByteBuffer
    ) {
        guard !head.isEmpty else { return writeStream(type, requestID: requestID, bytes: body, into: &buffer) }
        guard !body.isEmpty else { return writeStream(type, requestID: requestID, bytes: head, into: &buffer) }
        let max = RecordHeader.maxContentLength
        guard head.count < max else {
            writeStream(type, requestID: requestID, bytes: head, into: &buffer)
            writeStream(type, requestID: requestID, bytes: body, into: &buffer)
            return
        }
        let firstBodyBytes = min(body.count, max - head.count)
        let length = head.count + firstBodyBytes
        let padding = RecordHeader.padding(forContentLength: length)
        buffer.reserveCapacity(minimumWritableBytes: length + body.count + 16 * (body.count / max + 2))
        RecordWriter.writeHeader(
            type: type.rawValue,
            requestID: requestID,
            contentLength: length,
            paddingLength: padding,
            into: &buffer
        )
        buffer.writeBytes(head)
        body.withUnsafeBytes { bytes in
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<firstBodyBytes]))
            if padding > 0 { buffer.writeRepeatingByte(0, count: Int(padding)) }
            RecordWriter.writeChunked(
                type: type.rawValue,
                requestID: requestID,
                bytes: UnsafeRawBufferPointer(rebasing: bytes[firstBodyBytes...]),
                into: &buffer
            )
        }
    }
}
