import FastCGI

/// One request between its `FCGI_BEGIN_REQUEST` and its `FCGI_END_REQUEST`.
///
/// Confined to its connection's event loop. The application's task holds it through a
/// loop-bound reference, so a late write for a request that was aborted (and whose id may
/// already be reused) is recognised and dropped: nothing follows an `FCGI_END_REQUEST`.
final class InFlightRequest {
    let id: UInt16
    let role: Role
    let keepConnection: Bool
    let body: StdinBodySource
    var task: Task<Void, Never>?
    /// True once `FCGI_END_REQUEST` went out; from then on nothing is written for it.
    var isEnded = false
    /// True once the params stream has ended and the application has been started.
    var isStarted = false
    /// True once the empty `FCGI_STDIN` record arrived: the web server sends nothing more.
    var stdinEnded = false

    init(id: UInt16, role: Role, keepConnection: Bool, body: StdinBodySource) {
        self.id = id
        self.role = role
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

    public var description: String {
        switch self {
        case .aborted: "the web server aborted the request"
        case .connectionClosed: "the FastCGI connection closed"
        case .requestEnded: "the request has already ended"
        }
    }
}
