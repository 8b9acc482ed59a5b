import NIOCore

/// The record layer shared by both decoders: reassembles headers split across reads, tracks how
/// much content and padding of the current record is left, and counts stream offsets.
///
/// It keeps a partial header inside itself (as an integer, no allocation), so callers can drop
/// their buffer whenever it is exhausted.
struct RecordFramer: Sendable {
    /// Bytes consumed from the stream so far.
    var streamOffset = 0
    /// Offset of the first header byte of the current (or partially read) record.
    var recordStart = 0
    /// True between a complete header and the end of that record's padding.
    var inRecord = false
    /// Content bytes of the current record not yet consumed.
    var contentRemaining = 0
    /// Padding bytes of the current record not yet skipped.
    var paddingRemaining = 0
    /// Raw type of the current record.
    var type: UInt8 = 0
    /// Request id of the current record.
    var requestID: UInt16 = 0

    private var headerAccumulator: UInt64 = 0
    private var headerCount = 0

    /// True when the bytes consumed so far end exactly where a record ends (or nothing came).
    var isAtRecordBoundary: Bool { !inRecord && headerCount == 0 }

    /// Reads the next header if the buffer completes it. Returns false when more bytes are needed
    /// (everything readable has been consumed into the partial header).
    @inline(__always)
    mutating func readHeader(from buffer: inout ByteBuffer) throws(FastCGIError) -> Bool {
        let packed: UInt64
        if headerCount == 0, let whole = buffer.readInteger(as: UInt64.self) {
            recordStart = streamOffset
            streamOffset &+= RecordHeader.size
            packed = whole
        } else {
            let available = buffer.readableBytes
            if available == 0 { return false }
            if headerCount == 0 { recordStart = streamOffset }
            let take = min(RecordHeader.size &- headerCount, available)
            for _ in 0..<take {
                headerAccumulator = headerAccumulator &<< 8 | UInt64(buffer.readInteger(as: UInt8.self) ?? 0)
            }
            headerCount &+= take
            streamOffset &+= take
            guard headerCount == RecordHeader.size else { return false }
            packed = headerAccumulator
            headerAccumulator = 0
            headerCount = 0
        }
        let header = RecordHeader(packed: packed)
        type = header.type
        requestID = header.requestID
        guard header.version == RecordHeader.version1 else {
            throw FastCGIError(
                kind: .unsupportedVersion(header.version),
                recordType: header.type,
                requestID: header.requestID,
                streamOffset: recordStart
            )
        }
        contentRemaining = Int(header.contentLength)
        paddingRemaining = Int(header.paddingLength)
        inRecord = true
        return true
    }

    /// Consumes the current record's content bytes that are readable, without looking at them.
    @inline(__always)
    mutating func skipContent(_ buffer: inout ByteBuffer) {
        let count = min(contentRemaining, buffer.readableBytes)
        buffer.moveReaderIndex(forwardBy: count)
        contentRemaining &-= count
        streamOffset &+= count
    }

    /// Takes up to `contentRemaining` bytes as a slice of the caller's buffer (no copy).
    @inline(__always)
    mutating func readContentSlice(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        let count = min(contentRemaining, buffer.readableBytes)
        guard count > 0, let slice = buffer.readSlice(length: count) else { return nil }
        contentRemaining &-= count
        streamOffset &+= count
        return slice
    }

    /// Skips padding. Returns true when the record is finished (the next byte is a header).
    @inline(__always)
    mutating func finishPadding(_ buffer: inout ByteBuffer) -> Bool {
        if paddingRemaining > 0 {
            let count = min(paddingRemaining, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: count)
            paddingRemaining &-= count
            streamOffset &+= count
            if paddingRemaining > 0 { return false }
        }
        inRecord = false
        return true
    }

    /// An error located at the current record.
    func error(_ kind: FastCGIError.Kind) -> FastCGIError {
        FastCGIError(kind: kind, recordType: type, requestID: requestID, streamOffset: recordStart)
    }
}

/// Collects the first eight content bytes of a record whose body is a fixed struct
/// (BEGIN_REQUEST, END_REQUEST, UNKNOWN_TYPE) across any split, without allocating.
struct FixedBody: Sendable {
    var value: UInt64 = 0
    var count = 0

    /// Feeds content bytes from `framer`'s current record; returns the body once eight bytes are in.
    /// It takes no more than eight; the decoder skips whatever else the record holds.
    @inline(__always)
    mutating func feed(_ buffer: inout ByteBuffer, _ framer: inout RecordFramer) -> UInt64? {
        if count == 0, framer.contentRemaining >= 8, let whole = buffer.readInteger(as: UInt64.self) {
            framer.contentRemaining &-= 8
            framer.streamOffset &+= 8
            count = 8
            value = whole
            return whole
        }
        while count < 8, framer.contentRemaining > 0, let byte = buffer.readInteger(as: UInt8.self) {
            value = value &<< 8 | UInt64(byte)
            count &+= 1
            framer.contentRemaining &-= 1
            framer.streamOffset &+= 1
        }
        return count == 8 ? value : nil
    }

    mutating func reset() {
        value = 0
        count = 0
    }
}
