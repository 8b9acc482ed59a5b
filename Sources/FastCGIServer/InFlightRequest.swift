/// One request between its `FCGI_BEGIN_REQUEST` and its `FCGI_END_REQUEST`.
///
/// Confined to its connection's event loop. The application's task holds it through a
/// loop-bound reference, so a late write for a request that was aborted (and whose id may
/// already be reused) is recognised and dropped: nothing follows an `FCGI_END_REQUEST`.
final class InFlightRequest {
    let id: UInt16
    let keepConnection: Bool
    let body: StdinBodySource
    var task: Task<Void, Never>?
    /// True once `FCGI_END_REQUEST` went out; from then on nothing is written for it.
    var isEnded = false
    /// True once the params stream has ended and the application has been started.
    var isStarted = false
    /// True once the empty `FCGI_STDIN` record arrived: the web server sends nothing more.
    var stdinEnded = false
    /// `FCGI_STDIN` bytes received so far, counted against `ServerLimits.maxBodyBytes`.
    var stdinBytes = 0

    init(id: UInt16, keepConnection: Bool, body: StdinBodySource) {
        self.id = id
        self.keepConnection = keepConnection
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
