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

/// Why a response write failed before the request finished. (A request *body* that stops
/// early throws `RequestBodyIncomplete` instead, whatever the transport.)
public enum RequestInterruption: Error, CustomStringConvertible {
    /// The web server sent `FCGI_ABORT_REQUEST` (usually: the HTTP client went away).
    case aborted
    /// The FastCGI connection closed.
    case connectionClosed
    /// The request already ended; this write came too late.
    case requestEnded

    /// What went wrong, for the application's error log.
    public var description: String {
        switch self {
        case .aborted: "the web server aborted the request"
        case .connectionClosed: "the FastCGI connection closed"
        case .requestEnded: "the request has already ended"
        }
    }
}
