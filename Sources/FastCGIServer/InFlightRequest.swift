/// What the channel glue keeps for one request: its body and its application's task. Where
/// the request is in its life is not here but in `ConnectionStateMachine`'s table, whose
/// entry holds this as its payload.
///
/// Confined to its connection's event loop. The application's task names its request by id
/// and serial, so a late write for a request that was aborted (and whose id may already be
/// reused) is recognised and dropped: nothing follows an `FCGI_END_REQUEST`.
final class InFlightRequest {
    let id: UInt16
    let body: StdinBodySource
    var task: Task<Void, Never>?

    init(id: UInt16, body: StdinBodySource) {
        self.id = id
        self.body = body
    }
}

/// Why a request's body or output stopped working before the request finished.
public enum RequestInterruption: Error, CustomStringConvertible {
    /// The web server sent `FCGI_ABORT_REQUEST` (usually: the HTTP client went away).
    case aborted
    /// The FastCGI connection closed.
    case connectionClosed
    /// The request already ended; this write came too late.
    case requestEnded
    /// The web server closed its side of the connection before the request's body ended.
    case inputClosed

    public var description: String {
        switch self {
        case .aborted: "the web server aborted the request"
        case .connectionClosed: "the FastCGI connection closed"
        case .requestEnded: "the request has already ended"
        case .inputClosed: "the web server closed the connection before the request body ended"
        }
    }
}

/// What a request body's reader gets when no body bytes arrived for
/// `ServerLimits.stallTimeoutSeconds` while the web server owed some.
struct RequestBodyStalled: Error, CustomStringConvertible {
    let seconds: Int64
    var description: String { "no request body bytes arrived for \(seconds) s" }
}
