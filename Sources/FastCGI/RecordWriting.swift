import NIOCore

/// Low-level record writing shared by both encoders.
enum RecordWriter {
    /// Writes one record header.
    @inline(__always)
    static func writeHeader(
        type: UInt8,
        requestID: UInt16,
        contentLength: Int,
        paddingLength: UInt8,
        version: UInt8 = RecordHeader.version1,
        into buffer: inout ByteBuffer
    ) {
        let header = RecordHeader(
            version: version,
            type: type,
            requestID: requestID,
            contentLength: UInt16(truncatingIfNeeded: contentLength),
            paddingLength: paddingLength
        )
        buffer.writeInteger(header.packed)
    }

    /// Writes `bytes` as records of at most 65535 content bytes, each padded to a multiple of 8.
    /// Empty input writes nothing.
    @inline(__always)
    static func writeChunked(
        type: UInt8,
        requestID: UInt16,
        bytes: UnsafeRawBufferPointer,
        into buffer: inout ByteBuffer
    ) {
        let total = bytes.count
        guard total > 0 else { return }
        let max = RecordHeader.maxContentLength
        let records = (total &+ max &- 1) / max
        buffer.reserveCapacity(minimumWritableBytes: total &+ records &* (RecordHeader.size &+ 7))
        var offset = 0
        while offset < total {
            let length = min(max, total &- offset)
            let padding = RecordHeader.padding(forContentLength: length)
            writeHeader(type: type, requestID: requestID, contentLength: length, paddingLength: padding, into: &buffer)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset &+ length]))
            if padding > 0 { buffer.writeRepeatingByte(0, count: Int(padding)) }
            offset &+= length
        }
    }

    /// Same as `writeChunked` for any collection (copied to contiguous storage only if it has none).
    @inline(__always)
    static func writeChunked(
        type: UInt8,
        requestID: UInt16,
        collection: some Collection<UInt8>,
        into buffer: inout ByteBuffer
    ) {
        let done: Void? = collection.withContiguousStorageIfAvailable {
            writeChunked(type: type, requestID: requestID, bytes: UnsafeRawBufferPointer($0), into: &buffer)
        }
        if done == nil {
            let array = Array(collection)
            array.withUnsafeBytes { writeChunked(type: type, requestID: requestID, bytes: $0, into: &buffer) }
        }
    }

    /// Writes one 1- or 4-byte name-value length (§3.4).
    @inline(__always)
    static func writeLength(_ length: Int, forceLong: Bool, into buffer: inout ByteBuffer) {
        if length < 0x80, !forceLong {
            buffer.writeInteger(UInt8(truncatingIfNeeded: length))
        } else {
            buffer.writeInteger(UInt32(truncatingIfNeeded: length) | 0x8000_0000)
        }
    }

    /// Encodes pairs as a name-value stream (§3.4).
    static func encodePairs(_ pairs: [(String, String)], into buffer: inout ByteBuffer) {
        for (name, value) in pairs {
            writeLength(name.utf8.count, forceLong: false, into: &buffer)
            writeLength(value.utf8.count, forceLong: false, into: &buffer)
            buffer.writeString(name)
            buffer.writeString(value)
        }
    }
}
