/// Thrown while reading a request body that ended before it was whole: the client or the web
/// server went away during the upload, the web server aborted the request, or reading failed.
///
/// The one error for this, whatever the server (CGI, FastCGI, a test transport), so an
/// application catches one type: a short body is never taken for a whole one. ``reason``
/// says what happened; ``received`` and ``expected`` how far the body got.
public struct RequestBodyIncomplete: Error, Sendable, CustomStringConvertible {
    /// Why the body stopped.
    public struct Reason: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: Hashable {
            case endOfInput, aborted, connectionClosed, requestEnded, readFailed(Int32), stalled(Int64)
        }

        private let kind: Kind

        /// The body's stream ended before `CONTENT_LENGTH` bytes (CGI: standard input ended;
        /// FastCGI: the empty `FCGI_STDIN` record came early).
        public static let endOfInput = Reason(kind: .endOfInput)
        /// The web server aborted the request (`FCGI_ABORT_REQUEST`: usually the client left).
        public static let aborted = Reason(kind: .aborted)
        /// The connection to the web server closed, or it closed its side, mid-body.
        public static let connectionClosed = Reason(kind: .connectionClosed)
        /// The request had already ended (answered, refused, or timed out) when the body was read.
        public static let requestEnded = Reason(kind: .requestEnded)
        /// Reading failed with this `errno` (CGI: `read(2)` on standard input, or the spool file).
        public static func readFailed(errno: Int32) -> Reason { Reason(kind: .readFailed(errno)) }
        /// No body bytes arrived for this many seconds while the web server owed some (the
        /// FastCGI server's `--stall-timeout`): a stalled peer does not hold the request forever.
        public static func stalled(seconds: Int64) -> Reason { Reason(kind: .stalled(seconds)) }

        /// The `errno` of a failed read, nil for the other reasons.
        public var errorNumber: Int32? {
            if case .readFailed(let number) = kind { return number }
            return nil
        }

        /// The reason in words, for logs.
        public var description: String {
            switch kind {
            case .endOfInput: "the input ended"
            case .aborted: "the web server aborted the request"
            case .connectionClosed: "the connection to the web server closed"
            case .requestEnded: "the request had already ended"
            case .readFailed(let number): "reading failed (errno \(number))"
            case .stalled(let seconds): "no body bytes arrived for \(seconds) s"
            }
        }
    }

    /// What stopped the body.
    public var reason: Reason
    /// How many body bytes the application had received when it stopped.
    public var received: Int
    /// How many `CONTENT_LENGTH` announced; nil when the request declared none.
    public var expected: Int?

    /// How many bytes arrived of how many, and why the body ended, for logs.
    public var description: String {
        let expectation = expected.map { " of \($0)" } ?? ""
        return "request body incomplete: \(reason) after \(received)\(expectation) bytes"
    }

    /// The error for a body stopped by `reason` after `received` of `expected` bytes.
    /// Servers may leave the counts out: ``GatewayRequestBody`` fills them in as it rethrows.
    public init(reason: Reason, received: Int = 0, expected: Int? = nil) {
        self.reason = reason
        self.received = received
        self.expected = expected
    }

    /// The error for a stream that ended after `received` of `expected` bytes.
    public init(received: Int, expected: Int) {
        self.init(reason: .endOfInput, received: received, expected: expected)
    }
}
