import NIOCore

/// One thing the web server told the application, as decoded by `RequestDecoder`.
///
/// Events are per request id, in stream order, so a server can route each to its request's task
/// without seeing records at all.
public enum RequestEvent: Sendable, Equatable {
    /// `FCGI_BEGIN_REQUEST`: the id is now active. Any role is reported; the server answers
    /// `FCGI_UNKNOWN_ROLE` for roles it does not play and then calls `RequestDecoder.endRequest`.
    case begin(requestID: UInt16, role: Role, keepConnection: Bool)
    /// The complete PARAMS stream, reported when its empty terminating record arrives.
    case params(requestID: UInt16, NameValuePairs)
    /// Request body bytes: non-empty, a slice of the caller's buffer (not a copy), reported as
    /// soon as they arrive, even mid-record. (NIO's `ByteBuffer` can only slice without copying
    /// below a 16 MiB offset into its storage; channel reads are far smaller, so in a server this
    /// is always zero-copy.)
    case stdin(requestID: UInt16, ByteBuffer)
    /// The empty STDIN record: end of the request body. Reported once.
    case stdinEnd(requestID: UInt16)
    /// FCGI_DATA bytes (filter role): non-empty, a slice, reported as they arrive.
    case data(requestID: UInt16, ByteBuffer)
    /// The empty DATA record. Reported once.
    case dataEnd(requestID: UInt16)
    /// `FCGI_ABORT_REQUEST` for an active id (reported once per request).
    case abort(requestID: UInt16)
    /// `FCGI_GET_VALUES` on request id 0: the variable names asked for (values in a query are ignored).
    case getValues(names: [String])
    /// Any other record on request id 0; the server answers `FCGI_UNKNOWN_TYPE` (§4.2).
    case unknownManagementRecord(type: UInt8)
}
