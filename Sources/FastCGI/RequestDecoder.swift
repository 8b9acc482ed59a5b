import NIOCore

/// The server side of the FastCGI record layer: one per connection, fed bytes, pulled for events.
///
/// Multiplexed and incremental: records may be split at any byte and interleave request ids, and
/// any split of the same stream yields the same events. Partial headers, params and padding are
/// kept inside the decoder; body bytes are handed out as slices of the caller's buffer. Every
/// length is checked against `DecoderLimits` before anything is allocated for it.
///
/// Leniency, so a confused but harmless peer keeps its connection (§3.3):
/// - PARAMS, STDIN, DATA and ABORT_REQUEST for inactive ids are consumed silently.
/// - PARAMS after the params ended, STDIN after its end, DATA after its end, and repeated
///   ABORT_REQUESTs are consumed silently.
/// - Record types a web server does not send to applications (and unknown types) on non-zero
///   ids are consumed silently; on id 0 every type but GET_VALUES is reported as
///   `unknownManagementRecord` so the server can answer `FCGI_UNKNOWN_TYPE`.
/// - STDIN and DATA are reported even if they arrive before the params ended.
///
/// Errors are final: after one is thrown, every later call throws it again, because the
/// stream position is no longer trustworthy and the server should close the connection.
public struct RequestDecoder: Sendable {
    /// Per-request state kept between records.
    struct RequestState: Sendable {
        var params = PairAccumulator()
        var paramsEnded = false
        var stdinEnded = false
        var dataEnded = false
        var aborted = false
    }

    /// What to do with the content bytes of the current record.
    enum ContentMode: Sendable {
        case skip, begin, params, stdin, data, getValues
    }

    /// The limits this decoder enforces.
    public let limits: DecoderLimits
    private var framer = RecordFramer()
    private var mode = ContentMode.skip
    private var fixedBody = FixedBody()
    private var requests = RequestTable()
    private var scratch: [UInt8] = []
    private var failure: FastCGIError?
    /// PARAMS bytes held now for requests whose params have not ended, the figure
    /// `DecoderLimits.maxPendingParamsBytes` bounds.
    public private(set) var pendingParamsBytes = 0

    /// Creates the decoder for one new connection.
    public init(limits: DecoderLimits = .init()) {
        self.limits = limits
    }

    /// Number of currently active request ids.
    public var activeRequestCount: Int { requests.count }

    /// Total bytes consumed so far (error offsets count from the same origin).
    public var streamOffset: Int { framer.streamOffset }

    /// Whether the bytes consumed so far end exactly at the end of a record, padding included.
    /// A server that closes before that cuts a record the web server is still sending (an
    /// empty STDIN record's padding arrives after the event it caused), and may reset the
    /// connection under a response not yet read.
    public var isAtRecordBoundary: Bool { framer.isAtRecordBoundary }

    /// Whether `requestID` is active (begun and not yet ended with `endRequest`).
    public func isActive(_ requestID: UInt16) -> Bool {
        requests.find(requestID) != nil
    }

    /// The application side sent END_REQUEST for `requestID`: it becomes inactive (records for it
    /// are ignored from now on, §3.3) and may be reused by a later BEGIN_REQUEST. Unknown ids are
    /// ignored.
    public mutating func endRequest(_ requestID: UInt16) {
        guard let position = requests.find(requestID) else { return }
        pendingParamsBytes &-= requests.states[position].params.storage.count
        requests.remove(at: position)
        if framer.inRecord, framer.requestID == requestID, mode != .getValues {
            mode = .skip
        }
    }

    /// Decodes the next event from `buffer`, consuming the bytes it used.
    ///
    /// Returns nil only when `buffer` is exhausted and more bytes are needed; whatever was
    /// partial is kept inside the decoder, so the caller may drop the buffer after nil.
    public mutating func next(from buffer: inout ByteBuffer) throws(FastCGIError) -> RequestEvent? {
        if let failure { throw failure }
        do {
            return try decode(from: &buffer)
        } catch {
            failure = error
            throw error
        }
    }

    @inline(__always)
    private mutating func decode(from buffer: inout ByteBuffer) throws(FastCGIError) -> RequestEvent? {
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

    /// Interprets a fresh header; returns an event for records that have no content to wait for.
    @inline(__always)
    private mutating func startRecord() throws(FastCGIError) -> RequestEvent? {
        mode = .skip
        let id = framer.requestID
        let type = framer.type
        let length = framer.contentRemaining
        if id == 0 {
            guard type == RecordType.getValues.rawValue else {
                return .unknownManagementRecord(type: type)
            }
            if length == 0 { return .getValues(names: []) }
            scratch.removeAll(keepingCapacity: true)
            mode = .getValues
            return nil
        }
        switch type {
        case RecordType.beginRequest.rawValue:
            guard length >= 8 else { throw framer.error(.malformedBeginRequest) }
            fixedBody.reset()
            mode = .begin
            return nil
        case RecordType.params.rawValue:
            guard let index = requests.find(id) else { return nil }
            if requests.states[index].paramsEnded { return nil }
            if length == 0 {
                guard requests.states[index].params.isComplete else {
                    throw framer.error(.malformedNameValuePair)
                }
                requests.states[index].paramsEnded = true
                pendingParamsBytes &-= requests.states[index].params.storage.count
                return .params(requestID: id, requests.states[index].params.take())
            }
            if requests.states[index].params.storage.count &+ length > limits.maxParamsBytes {
                throw framer.error(.paramsTooLarge)
            }
            if pendingParamsBytes &+ length > limits.maxPendingParamsBytes {
                throw framer.error(.pendingParamsTooLarge)
            }
            mode = .params
            return nil
        case RecordType.stdin.rawValue:
            guard let index = requests.find(id), !requests.states[index].stdinEnded else { return nil }
            if length == 0 {
                requests.states[index].stdinEnded = true
                return .stdinEnd(requestID: id)
            }
            mode = .stdin
            return nil
        case RecordType.data.rawValue:
            guard let index = requests.find(id), !requests.states[index].dataEnded else { return nil }
            if length == 0 {
                requests.states[index].dataEnded = true
                return .dataEnd(requestID: id)
            }
            mode = .data
            return nil
        case RecordType.abortRequest.rawValue:
            guard let index = requests.find(id), !requests.states[index].aborted else { return nil }
            requests.states[index].aborted = true
            return .abort(requestID: id)
        default:
            return nil
        }
    }

    /// Consumes content of the current record (at least one byte is readable).
    @inline(__always)
    private mutating func consumeContent(_ buffer: inout ByteBuffer) throws(FastCGIError) -> RequestEvent? {
        switch mode {
        case .stdin:
            guard let slice = framer.readContentSlice(&buffer) else { return nil }
            return .stdin(requestID: framer.requestID, slice)
        case .data:
            guard let slice = framer.readContentSlice(&buffer) else { return nil }
            return .data(requestID: framer.requestID, slice)
        case .skip:
            framer.skipContent(&buffer)
            return nil
        case .params:
            try appendParams(&buffer)
            return nil
        case .begin:
            guard let body = fixedBody.feed(&buffer, &framer) else { return nil }
            mode = .skip
            return try begin(body)
        case .getValues:
            let count = min(framer.contentRemaining, buffer.readableBytes)
            buffer.withUnsafeReadableBytes {
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<count]))
            }
            buffer.moveReaderIndex(forwardBy: count)
            framer.contentRemaining &-= count
            framer.streamOffset &+= count
            guard framer.contentRemaining == 0 else { return nil }
            mode = .skip
            return try getValues()
        }
    }

    private mutating func appendParams(_ buffer: inout ByteBuffer) throws(FastCGIError) {
        let count = min(framer.contentRemaining, buffer.readableBytes)
        let id = framer.requestID
        let maxBytes = limits.maxParamsBytes
        let maxPairs = limits.maxParamsPairs
        guard let position = requests.find(id) else {
            framer.skipContent(&buffer)
            return
        }
        // Work on a local accumulator so the closure below does not capture `self`.
        var params = PairAccumulator()
        swap(&params, &requests.states[position].params)
        let outcome = buffer.withUnsafeReadableBytes { bytes in
            params.append(UnsafeRawBufferPointer(rebasing: bytes[..<count]), maxBytes: maxBytes, maxPairs: maxPairs)
        }
        swap(&params, &requests.states[position].params)
        buffer.moveReaderIndex(forwardBy: count)
        framer.contentRemaining &-= count
        framer.streamOffset &+= count
        pendingParamsBytes &+= count
        switch outcome {
        case .tooLarge: throw framer.error(.paramsTooLarge)
        case .tooMany: throw framer.error(.tooManyParams)
        case .ok: return
        }
    }

    private mutating func begin(_ body: UInt64) throws(FastCGIError) -> RequestEvent {
        let id = framer.requestID
        guard requests.find(id) == nil else { throw framer.error(.duplicateBeginRequest) }
        guard requests.count < limits.maxActiveRequests else { throw framer.error(.tooManyActiveRequests) }
        requests.insert(id)
        let role = Role(rawValue: UInt16(truncatingIfNeeded: body &>> 48))
        let flags = UInt8(truncatingIfNeeded: body &>> 40)
        return .begin(requestID: id, role: role, keepConnection: flags & 1 != 0)
    }

    private mutating func getValues() throws(FastCGIError) -> RequestEvent {
        var accumulator = PairAccumulator()
        let outcome = scratch.withUnsafeBytes {
            accumulator.append($0, maxBytes: Int(UInt32.max), maxPairs: Int.max / 4)
        }
        guard outcome == .ok, accumulator.isComplete else { throw framer.error(.malformedNameValuePair) }
        let pairs = accumulator.take()
        return .getValues(names: (0..<pairs.count).map { String(decoding: pairs.nameBytes(at: $0), as: UTF8.self) })
    }
}
