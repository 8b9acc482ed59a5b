import NIOCore

/// The client side of the record layer: decodes what an application sends back, incrementally
/// and for any split, like `RequestDecoder`. Used by tests, the test client and the load generator.
///
/// Strict, because its job is to check servers: a record type a web server should never receive
/// is an error (`unexpectedRecordType`), as are short END_REQUEST/UNKNOWN_TYPE bodies and unknown
/// protocol statuses. Errors are final, as in `RequestDecoder`.
public struct ResponseDecoder: Sendable {
    private enum ContentMode: Sendable {
        case skip, stdout, stderr, endRequest, unknownType, getValuesResult
    }

    private var framer = RecordFramer()
    private var mode = ContentMode.skip
    private var fixedBody = FixedBody()
    private var scratch: [UInt8] = []
    private var failure: FastCGIError?

    /// Creates a decoder for one connection.
    public init() {}

    /// Total bytes consumed so far.
    public var streamOffset: Int { framer.streamOffset }

    /// Decodes the next event from `buffer`, consuming the bytes it used; nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(FastCGIError) -> ResponseEvent? {
        if let failure { throw failure }
        do {
            return try decode(from: &buffer)
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func decode(from buffer: inout ByteBuffer) throws(FastCGIError) -> ResponseEvent? {
        while true {
            if !framer.inRecord {
                guard try framer.readHeader(from: &buffer) else { return nil }
                if let event = try startRecord() { return event }
                continue
            }
            if framer.contentRemaining > 0 {
                if buffer.readableBytes == 0 { return nil }
                if let event = try consumeContent(&buffer) { return event }
                continue
            }
            if !framer.finishPadding(&buffer) { return nil }
        }
    }

    private mutating func startRecord() throws(FastCGIError) -> ResponseEvent? {
        let id = framer.requestID
        let length = framer.contentRemaining
        mode = .skip
        switch RecordType(rawValue: framer.type) {
        case .stdout:
            if length == 0 { return .stdoutEnd(requestID: id) }
            mode = .stdout
        case .stderr:
            if length == 0 { return .stderrEnd(requestID: id) }
            mode = .stderr
        case .endRequest:
            guard length >= 8 else { throw framer.error(.malformedEndRequest) }
            fixedBody.reset()
            mode = .endRequest
        case .unknownType:
            guard length >= 8 else { throw framer.error(.malformedUnknownType) }
            fixedBody.reset()
            mode = .unknownType
        case .getValuesResult:
            if length == 0 { return .getValuesResult([]) }
            scratch.removeAll(keepingCapacity: true)
            mode = .getValuesResult
        default:
            throw framer.error(.unexpectedRecordType(framer.type))
        }
        return nil
    }

    private mutating func consumeContent(_ buffer: inout ByteBuffer) throws(FastCGIError) -> ResponseEvent? {
        switch mode {
        case .stdout:
            guard let slice = framer.readContentSlice(&buffer) else { return nil }
            return .stdout(requestID: framer.requestID, slice)
        case .stderr:
            guard let slice = framer.readContentSlice(&buffer) else { return nil }
            return .stderr(requestID: framer.requestID, slice)
        case .skip:
            framer.skipContent(&buffer)
            return nil
        case .endRequest:
            guard let body = fixedBody.feed(&buffer, &framer) else { return nil }
            mode = .skip
            let rawStatus = UInt8(truncatingIfNeeded: body &>> 24)
            guard let status = ProtocolStatus(rawValue: rawStatus) else {
                throw framer.error(.unknownProtocolStatus(rawStatus))
            }
            return .endRequest(
                requestID: framer.requestID,
                appStatus: UInt32(truncatingIfNeeded: body &>> 32),
                protocolStatus: status
            )
        case .unknownType:
            guard let body = fixedBody.feed(&buffer, &framer) else { return nil }
            mode = .skip
            return .unknownType(UInt8(truncatingIfNeeded: body &>> 56))
        case .getValuesResult:
            let count = min(framer.contentRemaining, buffer.readableBytes)
            buffer.withUnsafeReadableBytes {
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<count]))
            }
            buffer.moveReaderIndex(forwardBy: count)
            framer.contentRemaining &-= count
            framer.streamOffset &+= count
            guard framer.contentRemaining == 0 else { return nil }
            mode = .skip
            var accumulator = PairAccumulator()
            let outcome = scratch.withUnsafeBytes {
                accumulator.append($0, maxBytes: Int(UInt32.max), maxPairs: Int.max / 4)
            }
            guard outcome == .ok, accumulator.isComplete else { throw framer.error(.malformedNameValuePair) }
            return .getValuesResult(accumulator.take().pairs.map { ($0.name, $0.value) })
        }
    }
}
