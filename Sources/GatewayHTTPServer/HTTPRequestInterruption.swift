/// Why a request's body or response stopped before the request finished.
public enum HTTPRequestInterruption: Error, CustomStringConvertible {
    /// The client closed the connection.
    case connectionClosed
    /// The client sent nothing for longer than ``HTTPServerLimits/requestTimeoutSeconds``.
    case timedOut
    /// The client sent a malformed body (e.g. broken chunked framing).
    case malformedBody
    /// The response already ended; this write or read came too late.
    case requestEnded

    /// What went wrong, for logs and test failures.
    public var description: String {
        switch self {
        case .connectionClosed: "the HTTP client closed the connection"
        case .timedOut: "the HTTP client sent nothing for too long"
        case .malformedBody: "the HTTP client sent a malformed request body"
        case .requestEnded: "the request has already ended"
        }
    }
}
