/// Where an application reports problems: the web server's error log.
///
/// Like `wsgi.errors`, it is a plain synchronous sink so it can be used from anywhere,
/// including cleanup code. FastCGI servers send it as `FCGI_STDERR` (nginx and Apache
/// write that to their error log); CGI processes write it to standard error.
public struct ErrorStream: Sendable {
    private let sink: @Sendable (String) -> Void

    /// Creates a stream that hands each message to `sink`.
    public init(_ sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    /// Writes one message; a trailing newline is added when missing, so each call is one log line.
    public func write(_ message: String) {
        sink(message.hasSuffix("\n") ? message : message + "\n")
    }

    /// A stream that drops everything, for tests and for servers without an error log.
    public static let discarding = ErrorStream { _ in }
}
