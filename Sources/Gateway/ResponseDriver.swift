import HTTPTypes

/// Where a server sends the bytes of a CGI response: `FCGI_STDOUT` or standard output.
public protocol ResponseOutput {
    /// Sends `head` (empty once it was sent) followed by `body`, and flushes them unless
    /// `isLast` says nothing follows, in which case the server may batch its end-of-response.
    nonisolated(nonsending) mutating func send(head: [UInt8], body: [UInt8], isLast: Bool) async throws
}

/// How one response ended; servers turn this into their protocol's ending.
public enum ResponseOutcome: Sendable {
    /// The application's response was sent in full.
    case completed
    /// The application threw. With `headSent` false a `500` was sent instead; with it true
    /// the response is cut short and the server must end it as failed.
    case applicationFailed(headSent: Bool)
    /// Sending failed (the client or web server went away); the application was stopped.
    case outputFailed
}

/// Runs an application for one request and writes its response as CGI output.
///
/// The one place that decides when the head goes out (with the first body bytes, or at the
/// end of an empty body), what a thrown error becomes, and what reaches the error log, so
/// CGI and FastCGI behave the same.
public enum ResponseDriver {
    /// The `500` sent when an application throws before its head went out. Says nothing
    /// about the error: details go to the error log, never to the client.
    public static let internalServerError = plainText(.internalServerError, "Internal Server Error\n")

    /// The `413` sent when ``RequestBodyTooLarge`` escapes an application before its head
    /// went out: the client sent more than the application or the server takes.
    public static let contentTooLarge = plainText(.contentTooLarge, "Request body too large\n")

    private static func plainText(_ status: HTTPResponse.Status, _ text: String) -> (head: [UInt8], body: [UInt8]) {
        let body = Array(text.utf8)
        let head = ResponseHead.encode(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            contentLength: body.count
        )
        return (head, body)
    }

    /// Calls `application` with `environ` and sends its response to `output`.
    nonisolated(nonsending) public static func run<Output: ResponseOutput>(
        _ application: some GatewayApplication,
        environ: Environ,
        output: inout Output
    ) async -> ResponseOutcome {
        let response: GatewayResponse
        do {
            response = try await application.respond(to: environ)
        } catch {
            return await fail(error, environ: environ, output: &output, stage: "while answering")
        }
        if let problem = ResponseHead.problem(status: response.status, contentLength: response.body.contentLength) {
            return await fail(problem, environ: environ, output: &output, stage: "in its response")
        }
        let head = ResponseHead.encode(
            status: response.status,
            headers: response.headers,
            contentLength: response.body.contentLength
        )
        switch response.body.content {
        case .bytes(let bytes):
            do {
                try await output.send(head: head, body: bytes, isLast: true)
                return .completed
            } catch {
                return .outputFailed
            }
        case .stream(let write):
            // A reference: whether the head went out is known here whatever the body (or a
            // middleware around it) did with its copy of the writer, and however it ended.
            let finished = HeadDeferringWriter(output: output, pendingHead: head)
            var writer: any GatewayResponseBodyWriter = finished
            var thrown: (any Error)?
            do {
                try await write(&writer)
            } catch {
                thrown = error
            }
            output = finished.output
            if finished.outputFailed { return .outputFailed }
            if let thrown {
                if finished.pendingHead == nil {
                    environ.errors.write(
                        "swift-gateway: application error after the response began, \(describe(environ)): \(thrown)"
                    )
                    return .applicationFailed(headSent: true)
                }
                return await fail(thrown, environ: environ, output: &output, stage: "before writing its body")
            }
            if let pendingHead = finished.pendingHead {
                do {
                    try await output.send(head: pendingHead, body: [], isLast: true)
                } catch {
                    return .outputFailed
                }
            }
            return .completed
        }
    }

    nonisolated(nonsending) private static func fail(
        _ error: any Error,
        environ: Environ,
        output: inout some ResponseOutput,
        stage: String
    ) async -> ResponseOutcome {
        if error is RequestBodyTooLarge {
            // The client's fault, not the application's: nothing for the error log.
            do {
                try await output.send(head: contentTooLarge.head, body: contentTooLarge.body, isLast: true)
            } catch {
                return .outputFailed
            }
            return .completed
        }
        environ.errors.write("swift-gateway: application error \(stage), \(describe(environ)): \(error)")
        do {
            try await output.send(head: internalServerError.head, body: internalServerError.body, isLast: true)
        } catch {
            return .outputFailed
        }
        return .applicationFailed(headSent: false)
    }

    private static func describe(_ environ: Environ) -> String {
        "\(environ.requestMethod) \(environ.path)"
    }
}

/// Holds the head back until the first non-empty body write, so an empty write never
/// produces an empty record (which would end a FastCGI stream early).
final class HeadDeferringWriter<Output: ResponseOutput>: GatewayResponseBodyWriter {
    var output: Output
    var pendingHead: [UInt8]?
    var outputFailed = false

    init(output: Output, pendingHead: [UInt8]) {
        self.output = output
        self.pendingHead = pendingHead
    }

    nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        do {
            try await output.send(head: pendingHead ?? [], body: bytes, isLast: false)
            pendingHead = nil
        } catch {
            outputFailed = true
            throw error
        }
    }
}
