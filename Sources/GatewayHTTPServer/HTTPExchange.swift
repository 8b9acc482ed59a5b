import NIOCore

/// One request and its response on a connection, from its head to the end of both.
///
/// Confined to the connection's event loop; the application's task reaches it through a
/// loop-bound reference.
final class HTTPExchange {
    /// How the response body is delimited on the wire.
    enum Framing {
        /// `Content-Length` bytes follow.
        case length(Int)
        /// `Transfer-Encoding: chunked` (HTTP/1.1 without a known length).
        case chunked
        /// Until the connection closes (HTTP/1.0 without a known length).
        case untilClose
        /// No body may follow (`HEAD`, 204, 304).
        case bodiless
    }

    let body: HTTPRequestBodySource
    let isHead: Bool
    let version: (major: Int, minor: Int)
    var task: Task<Void, Never>?
    /// Whether the connection may serve another request after this one.
    var keepAlive: Bool
    /// The whole request (head and body) has been received.
    var requestEnded = false
    /// The request's body bytes received so far, counted against the body limit.
    var bodyBytes = 0
    /// Whether the body is over its buffer bound, holding the connection's reading paused.
    var isPausingReads = false
    /// The response head has been written, and with it the framing decided.
    var framing: Framing?
    /// Body bytes written under `.length` framing.
    var bytesWritten = 0
    /// The response has been written in full (or given up); nothing more goes out for it.
    var responseEnded = false

    init(body: HTTPRequestBodySource, isHead: Bool, version: (major: Int, minor: Int), keepAlive: Bool) {
        self.body = body
        self.isHead = isHead
        self.version = version
        self.keepAlive = keepAlive
    }
}
