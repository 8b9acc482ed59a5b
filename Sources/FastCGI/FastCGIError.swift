/// A protocol violation found while decoding a FastCGI stream.
///
/// Carries where it happened (record type, request id, byte offset in the connection's stream)
/// so the server can log one clear line and close the offending connection. The decoders never
/// trap on input; every problem ends up here.
public struct FastCGIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong.
    public enum Kind: Sendable, Equatable {
        /// The header's version byte was not 1.
        case unsupportedVersion(UInt8)
        /// `FCGI_BEGIN_REQUEST` for a request id that is still active.
        case duplicateBeginRequest
        /// `FCGI_BEGIN_REQUEST` beyond `DecoderLimits.maxActiveRequests`.
        case tooManyActiveRequests
        /// The PARAMS stream (or one pair's declared length) exceeds `DecoderLimits.maxParamsBytes`.
        case paramsTooLarge
        /// The unfinished PARAMS of the connection's requests together exceed
        /// `DecoderLimits.maxPendingParamsBytes`.
        case pendingParamsTooLarge
        /// More pairs than `DecoderLimits.maxParamsPairs`.
        case tooManyParams
        /// A name-value pair is cut short at the end of its stream or record.
        case malformedNameValuePair
        /// `FCGI_BEGIN_REQUEST` content shorter than its 8-byte body.
        case malformedBeginRequest
        /// A record type that the receiving side never expects (client side: a request record from a server).
        case unexpectedRecordType(UInt8)
        /// `FCGI_END_REQUEST` content shorter than its 8-byte body (client side).
        case malformedEndRequest
        /// `FCGI_UNKNOWN_TYPE` content shorter than its 8-byte body (client side).
        case malformedUnknownType
        /// `FCGI_END_REQUEST` with a protocol status outside the four the spec defines (client side).
        case unknownProtocolStatus(UInt8)
    }

    /// What was wrong.
    public var kind: Kind
    /// Raw type of the record in which the problem was found, if a header had been read.
    public var recordType: UInt8?
    /// Request id of that record, if a header had been read.
    public var requestID: UInt16?
    /// Offset, in bytes from the start of the connection's stream, of the first byte of the
    /// record in which the problem was found.
    public var streamOffset: Int

    /// Creates an error; the decoders fill in the location.
    public init(kind: Kind, recordType: UInt8? = nil, requestID: UInt16? = nil, streamOffset: Int) {
        self.kind = kind
        self.recordType = recordType
        self.requestID = requestID
        self.streamOffset = streamOffset
    }

    /// One line for logs: what was wrong, in which record, at which offset.
    public var description: String {
        var where_ = "in "
        if let recordType {
            where_ += Self.recordName(recordType) + " record"
        } else {
            where_ += "record header"
        }
        if let requestID {
            where_ += " for request \(requestID)"
        }
        where_ += " at stream offset \(streamOffset)"
        return "FastCGI protocol error: \(what) \(where_)"
    }

    private var what: String {
        switch kind {
        case .unsupportedVersion(let version): "unsupported protocol version \(version) (only 1 exists)"
        case .duplicateBeginRequest: "BEGIN_REQUEST for a request id that is already active"
        case .tooManyActiveRequests: "BEGIN_REQUEST over the limit of concurrently active requests"
        case .paramsTooLarge: "PARAMS stream or declared name-value length over the params size limit"
        case .pendingParamsTooLarge: "unfinished PARAMS of this connection's requests over the per-connection limit"
        case .tooManyParams: "more name-value pairs than the params count limit"
        case .malformedNameValuePair: "name-value pair cut short"
        case .malformedBeginRequest: "BEGIN_REQUEST body shorter than 8 bytes"
        case .unexpectedRecordType(let type): "unexpected record type \(type)"
        case .malformedEndRequest: "END_REQUEST body shorter than 8 bytes"
        case .malformedUnknownType: "UNKNOWN_TYPE body shorter than 8 bytes"
        case .unknownProtocolStatus(let status): "unknown END_REQUEST protocol status \(status)"
        }
    }

    static func recordName(_ type: UInt8) -> String {
        switch RecordType(rawValue: type) {
        case .beginRequest: "BEGIN_REQUEST"
        case .abortRequest: "ABORT_REQUEST"
        case .endRequest: "END_REQUEST"
        case .params: "PARAMS"
        case .stdin: "STDIN"
        case .stdout: "STDOUT"
        case .stderr: "STDERR"
        case .data: "DATA"
        case .getValues: "GET_VALUES"
        case .getValuesResult: "GET_VALUES_RESULT"
        case .unknownType: "UNKNOWN_TYPE"
        case nil: "type-\(type)"
        }
    }
}
