/// One HTTP request as a test describes it, independent of how it reaches the application.
///
/// `target` is the request target relative to where the application is mounted: a path
/// starting with `/` and optionally `?query`. Each transport puts it behind its own mount
/// point (`SCRIPT_NAME`), so one test body runs unchanged against every transport.
public struct TestRequest: Sendable {
    /// The request method, e.g. `GET`.
    public var method: String
    /// Path (and `?query`) below the application's mount point, still percent-encoded.
    public var target: String
    /// Request headers in order; `Host` and `Content-Length` are added by the transport.
    public var headers: [(name: String, value: String)]
    /// The request body.
    public var body: [UInt8]

    /// A request; a body makes the transport send `Content-Length`.
    public init(
        _ method: String = "GET",
        _ target: String = "/",
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = []
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// The target's path, before any `?`.
    public var path: String { String(target.prefix { $0 != "?" }) }

    /// The target's query, after the first `?` (empty when there is none).
    public var query: String {
        guard let mark = target.firstIndex(of: "?") else { return "" }
        return String(target[target.index(after: mark)...])
    }
}

/// What came back: status, headers and body, plus what the transport could see of the
/// application's error stream and exit.
public struct TestResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The reason phrase, possibly empty.
    public var reasonPhrase: String
    /// The response headers in order (for CGI output: without the `Status` pseudo-header).
    public var headers: [(name: String, value: String)]
    /// The response body (de-chunked when the web server used chunked encoding).
    public var body: [UInt8]
    /// What the application wrote to its error stream, when the transport can see it
    /// (in-process and CGI-process transports; empty through a web server).
    public var errors: String
    /// The exit status of a CGI process; nil for other transports.
    public var exitStatus: Int32?

    /// Creates a response.
    public init(
        status: Int,
        reasonPhrase: String = "",
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        errors: String = "",
        exitStatus: Int32? = nil
    ) {
        self.status = status
        self.reasonPhrase = reasonPhrase
        self.headers = headers
        self.body = body
        self.errors = errors
        self.exitStatus = exitStatus
    }

    /// The first value of the header called `name` (compared case-insensitively).
    public subscript(header name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// Every value of the header called `name` (compared case-insensitively).
    public func values(of name: String) -> [String] {
        let wanted = name.lowercased()
        return headers.filter { $0.name.lowercased() == wanted }.map(\.value)
    }

    /// The body decoded as UTF-8.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A way to deliver a ``TestRequest`` to an application: in-process, as a CGI process,
/// over FastCGI, or through a real web server. Tests written against this protocol run
/// unchanged against each.
public protocol GatewayTransport: Sendable {
    /// A short name for test output, e.g. `in-process` or `apache+mod_cgid`.
    var name: String { get }
    /// Sends `request` and returns the complete response.
    func perform(_ request: TestRequest) async throws -> TestResponse
}

/// A transport or test helper failed (not the application: its failures are responses).
public struct TransportError: Error, CustomStringConvertible {
    /// What went wrong, with what is known about why.
    public let description: String

    /// Creates an error with `description`.
    public init(_ description: String) {
        self.description = description
    }
}
