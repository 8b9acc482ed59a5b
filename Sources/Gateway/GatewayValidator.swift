import HTTPTypes
import Synchronization

/// Middleware that checks both sides of the interface, like Python's `wsgiref.validate`.
///
/// Put it between a server and an application while developing or testing either. It checks
/// the environ the server built (required variables present, `CONTENT_LENGTH` a number,
/// `SCRIPT_NAME`/`PATH_INFO` shaped like paths, a known URL scheme …) and the response the
/// application returned (a valid status, no hop-by-hop headers, a `Content-Length` that matches
/// the bytes actually written, no body where HTTP forbids one, a `Content-Type` on every body).
///
/// Each problem is reported as a ``Violation`` to the handler (by default one line on
/// `environ.errors`, which ends up in the web server's error log). With `strict`, the first
/// problem is also thrown: before the application runs for environ problems (the client gets
/// a `500`), before the head is sent for response problems (also a `500`), and from the body
/// writer for body problems (the response is cut short, since its head is already out).
public struct GatewayValidator: GatewayMiddleware {
    /// One broken rule.
    public struct Violation: Error, Sendable, Hashable, CustomStringConvertible {
        /// Which side broke the rule.
        public enum Side: String, Sendable, Hashable {
            /// The server, in the environ it built.
            case server
            /// The application, in its response.
            case application
        }

        /// Which side broke the rule.
        public let side: Side
        /// What is wrong, in one sentence.
        public let message: String

        /// Creates a violation.
        public init(_ side: Side, _ message: String) {
            self.side = side
            self.message = message
        }

        /// Which side broke the specification and how, for the log line and the test failure.
        public var description: String { "\(side.rawValue): \(message)" }
    }

    /// Receives each violation along with the environ of the request it was found in.
    public typealias Handler = @Sendable (Violation, Environ) -> Void

    /// Whether the first violation is also thrown.
    public var strict: Bool
    private let handler: Handler

    /// A validator reporting to `handler`, by default one line per violation on `environ.errors`.
    public init(strict: Bool = false, handler: Handler? = nil) {
        self.strict = strict
        self.handler =
            handler ?? { violation, environ in
                environ.errors.write("swift-gateway validator: \(violation)")
            }
    }

    /// Checks the environ, calls `next`, and checks its response (and its body as it streams).
    nonisolated(nonsending) public func respond(
        to environ: Environ,
        next: some GatewayApplication
    ) async throws -> GatewayResponse {
        let environViolations = GatewayValidator.check(environ)
        try report(environViolations, environ)
        let response = try await next.respond(to: environ)
        try report(GatewayValidator.check(response), environ)
        return wrapBody(of: response, environ: environ)
    }

    private func report(_ violations: [Violation], _ environ: Environ) throws {
        for violation in violations { handler(violation, environ) }
        if strict, let first = violations.first { throw first }
    }

    // MARK: The environ

    /// The rules a server's environ breaks; empty when it follows the specification.
    public static func check(_ environ: Environ) -> [Violation] {
        var found: [Violation] = []
        func fail(_ message: String) { found.append(Violation(.server, message)) }
        for name in ["REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL"] where environ[name] == nil {
            fail("\(name) is missing")
        }
        if let method = environ["REQUEST_METHOD"], HTTPRequest.Method(method) == nil {
            fail("REQUEST_METHOD \(quoted(method)) is not an HTTP method token")
        }
        if let port = environ["SERVER_PORT"], Int(decimalDigits: port) == nil {
            fail("SERVER_PORT \(quoted(port)) is not a decimal number")
        }
        if let length = environ["CONTENT_LENGTH"], !length.isEmpty, Int(decimalDigits: length) == nil {
            fail("CONTENT_LENGTH \(quoted(length)) is neither empty nor a decimal number")
        }
        for name in ["SCRIPT_NAME", "PATH_INFO"] {
            if let value = environ[name], !value.isEmpty, !value.hasPrefix("/") {
                fail("\(name) \(quoted(value)) is neither empty nor starts with \"/\"")
            }
        }
        let scheme = environ.urlScheme
        if scheme != "http", scheme != "https" {
            fail("the URL scheme is \(quoted(scheme)), not http or https (REQUEST_SCHEME/HTTPS)")
        }
        for index in environ.variables.indices where environ.variables.name(at: index).isEmpty {
            fail("variable \(index) has an empty name")
        }
        if environ.version != .current {
            fail("version is \(environ.version), this library implements \(GatewayVersion.current)")
        }
        if environ.runOnce && environ.multithread {
            fail("runOnce and multithread are both true: a process that serves one request runs no other")
        }
        return found
    }

    // MARK: The response

    /// The rules a response's status and headers break (its body is checked as it is written).
    public static func check(_ response: GatewayResponse) -> [Violation] {
        var found: [Violation] = []
        func fail(_ message: String) { found.append(Violation(.application, message)) }
        let code = response.status.code
        if !(100...599).contains(code) { fail("status \(code) is outside 100…599") }
        for field in response.headers where ResponseHead.hopByHopHeaders.contains(field.name.canonicalName) {
            fail("header \(field.name) is hop-by-hop (or CGI's own); the web server owns it and it will be dropped")
        }
        let declared = response.headers[values: .contentLength]
        if declared.count > 1 { fail("Content-Length is set \(declared.count) times") }
        if let first = declared.first {
            if let value = Int(decimalDigits: first) {
                if let known = response.body.contentLength, known != value {
                    fail("Content-Length header says \(value) but the body's contentLength is \(known)")
                }
            } else {
                fail("Content-Length \(quoted(first)) is not a decimal number")
            }
        }
        if !ResponseHead.allowsBody(response.status), case .stream = response.body.content,
            let length = declaredLength(of: response), length > 0
        {
            fail("status \(code) must not have a body, but Content-Length is \(length)")
        }
        if case .bytes(let bytes) = response.body.content, !bytes.isEmpty {
            if !ResponseHead.allowsBody(response.status) {
                fail("status \(code) must not have a body, but it has \(bytes.count) bytes")
            } else if response.headers[.contentType] == nil {
                fail("the body has \(bytes.count) bytes but there is no Content-Type")
            }
        }
        return found
    }

    /// The length the head will announce: the header, else the body's own.
    static func declaredLength(of response: GatewayResponse) -> Int? {
        if let header = response.headers[.contentLength] { return Int(decimalDigits: header) }
        return response.body.contentLength
    }

    /// A streaming body is wrapped so its writes are counted and checked as they happen.
    private func wrapBody(of response: GatewayResponse, environ: Environ) -> GatewayResponse {
        guard case .stream(let write) = response.body.content else { return response }
        let expected = GatewayValidator.declaredLength(of: response)
        let allowsBody = ResponseHead.allowsBody(response.status)
        let hasContentType = response.headers[.contentType] != nil
        let code = response.status.code
        var checked = response
        checked.body = GatewayResponseBody(contentLength: response.body.contentLength) { writer in
            let counting = CountingWriter(
                base: writer,
                expected: expected,
                allowsBody: allowsBody,
                hasContentType: hasContentType,
                code: code,
                report: { try report([$0], environ) }
            )
            var erased: any GatewayResponseBodyWriter = counting
            // A reference: what it counted and the server's writer it holds survive whatever
            // the body does with `erased` (even replace it) and however it ends.
            defer { writer = counting.base }
            try await write(&erased)
            if let expected, counting.written < expected {
                try report(
                    [
                        Violation(
                            .application,
                            "Content-Length is \(expected) but the body ended after \(counting.written) bytes"
                        )
                    ],
                    environ
                )
            }
        }
        return checked
    }
}

/// Counts a streaming body's bytes and checks each write before passing it on.
private final class CountingWriter: GatewayResponseBodyWriter {
    var base: any GatewayResponseBodyWriter
    let expected: Int?
    let allowsBody: Bool
    let hasContentType: Bool
    let code: Int
    let report: (GatewayValidator.Violation) throws -> Void
    var written = 0
    var reportedOverrun = false

    init(
        base: any GatewayResponseBodyWriter,
        expected: Int?,
        allowsBody: Bool,
        hasContentType: Bool,
        code: Int,
        report: @escaping (GatewayValidator.Violation) throws -> Void
    ) {
        self.base = base
        self.expected = expected
        self.allowsBody = allowsBody
        self.hasContentType = hasContentType
        self.code = code
        self.report = report
    }

    nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        if !bytes.isEmpty && written == 0 {
            if !allowsBody {
                try report(
                    GatewayValidator.Violation(.application, "status \(code) must not have a body, but one is written")
                )
            } else if !hasContentType {
                try report(GatewayValidator.Violation(.application, "the body is written but there is no Content-Type"))
            }
        }
        if let expected, written + bytes.count > expected, !reportedOverrun {
            reportedOverrun = true
            try report(
                GatewayValidator.Violation(
                    .application,
                    "Content-Length is \(expected) but \(written + bytes.count) bytes are written"
                )
            )
        }
        written += bytes.count
        try await base.write(bytes)
    }
}

private func quoted(_ text: String) -> String {
    "\"\(text)\""
}
