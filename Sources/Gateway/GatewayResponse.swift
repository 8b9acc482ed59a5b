public import HTTPTypes

/// What an application returns: a status, headers and a body.
///
/// The head is not sent when the application returns but together with the first body
/// bytes (or at the end of an empty body), so a streaming body that fails before writing
/// anything can still become a clean 500.
public struct GatewayResponse: Sendable {
    /// The HTTP status. Sent to the web server as a `Status:` line.
    public var status: HTTPResponse.Status
    /// The response headers. Hop-by-hop headers (`Connection`, `Transfer-Encoding` …) belong
    /// to the web server and are dropped; `Content-Length` is added whenever the body's length
    /// is known (in-memory bodies, and streams made with a `contentLength`).
    public var headers: HTTPFields
    /// The body: bytes in memory, or a writer that streams.
    public var body: GatewayResponseBody

    /// A response with the given parts; by default an empty `200 OK`.
    public init(status: HTTPResponse.Status = .ok, headers: HTTPFields = [:], body: GatewayResponseBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response, the most common answer in tests and examples.
    public static func text(_ text: String, status: HTTPResponse.Status = .ok) -> GatewayResponse {
        GatewayResponse(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: GatewayResponseBody(string: text)
        )
    }

    /// A response with an empty body, e.g. `404` or `204`.
    public static func status(_ status: HTTPResponse.Status) -> GatewayResponse {
        GatewayResponse(status: status)
    }
}

/// A response body: bytes already in memory, or a function that writes them as they are made.
public struct GatewayResponseBody: Sendable {
    /// The function a streaming body runs; it writes through the writer it is given.
    ///
    /// `nonisolated(nonsending)`: it runs on the executor of the server task that sends it.
    public typealias Writer =
        nonisolated(nonsending) @Sendable (inout any GatewayResponseBodyWriter) async throws -> Void

    enum Content: Sendable {
        case bytes([UInt8])
        case stream(Writer)
    }

    let content: Content
    /// The body's length when known in advance; for in-memory bytes, their count.
    public let contentLength: Int?

    /// A body of the given bytes.
    public init(bytes: [UInt8]) {
        self.content = .bytes(bytes)
        self.contentLength = bytes.count
    }

    /// A body of the UTF-8 bytes of `string`.
    public init(string: String) {
        self.init(bytes: Array(string.utf8))
    }

    /// A body that streams: `write` is called once, after the application returned, and each
    /// `writer.write` reaches the web server before it returns (it waits while the client is slow).
    /// Pass `contentLength` when known; the gateway then sends `Content-Length`.
    public init(contentLength: Int? = nil, _ write: @escaping Writer) {
        self.content = .stream(write)
        self.contentLength = contentLength
    }

    /// No body.
    public static let empty = GatewayResponseBody(bytes: [])

    /// The bytes of an in-memory body; nil for a streaming one. GatewayMiddleware reads them to
    /// inspect or replace a body (an ETag, a checksum) without running anything.
    public var bytes: [UInt8]? {
        if case .bytes(let bytes) = content { return bytes }
        return nil
    }

    /// Writes the whole body through `writer`: in-memory bytes in one write (none when
    /// empty), a stream as it runs.
    ///
    /// This is how middleware wraps a body it did not make: it returns a new streaming body
    /// whose function puts the server's writer inside a writer of its own (one that
    /// compresses, counts or rewrites bytes), writes this body through it, then hands the
    /// server's writer back (in a `defer`, so also when the body throws), since writers are
    /// values that may keep state:
    ///
    /// ```swift
    /// let inner = response.body
    /// response.body = GatewayResponseBody { writer in
    ///     var counting = CountingWriter(wrapped: writer)
    ///     defer { writer = counting.wrapped }
    ///     try await inner.write(to: &counting)
    /// }
    /// ```
    nonisolated(nonsending) public func write<Destination: GatewayResponseBodyWriter>(
        to writer: inout Destination
    ) async throws {
        switch content {
        case .bytes(let bytes):
            if !bytes.isEmpty { try await writer.write(bytes) }
        case .stream(let write):
            var erased: any GatewayResponseBodyWriter = writer
            defer { if let back = erased as? Destination { writer = back } }
            try await write(&erased)
        }
    }
}

/// Writes a streaming response body. Implemented by servers (and by middleware that
/// transforms bodies); applications only call it.
public protocol GatewayResponseBodyWriter {
    /// Sends `bytes` to the web server now. Returns once they are handed to the socket,
    /// so a slow client slows the writer down instead of filling memory. Throws when the
    /// client is gone; the application should then stop.
    nonisolated(nonsending) mutating func write(_ bytes: [UInt8]) async throws
}

extension GatewayResponseBodyWriter {
    /// Sends the UTF-8 bytes of `string`.
    nonisolated(nonsending) public mutating func write(_ string: String) async throws {
        try await write(Array(string.utf8))
    }
}
