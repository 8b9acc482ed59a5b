/// Bounds on what one development HTTP server accepts from its clients.
///
/// Every buffer a client can make the server fill has a limit here, and every wait for the
/// client has a deadline, so a stuck or hostile client cannot hold memory or a connection.
public struct HTTPServerLimits: Sendable {
    /// Bytes of one request head (request line plus all header lines). Larger heads are
    /// answered `431`. Values over 1 MiB count as 1 MiB.
    public var maxHeaderBytes: Int = 32 << 10
    /// Request body bytes. A larger `Content-Length` is answered `413` without running the
    /// app; a chunked body fails with `RequestBodyTooLarge` (a `413`) once it passes this.
    public var maxBodyBytes: Int = 1 << 30
    /// Request body bytes buffered while the application does not read them; past this the
    /// connection stops reading from the socket until the application catches up.
    public var bodyBufferBytes: Int = 256 << 10
    /// Seconds the server waits for the client: for a whole request head (from the connection
    /// opening, or the previous response ending, so an idle kept connection closes too), and
    /// between body bytes. The connection is closed when it passes; 0 or less waits forever.
    /// Not applied while the application runs or does not read its body.
    public var requestTimeoutSeconds: Int64 = 60
    /// Open connections; more are closed as soon as they are accepted.
    public var maxConnections: Int = 1024
    /// How long requests in flight may take to finish once graceful shutdown begins.
    public var shutdownGracePeriod: Duration = .seconds(10)

    /// The defaults: generous enough for development, bounded everywhere.
    public init() {}

    /// ``maxHeaderBytes`` as applied: at most 1 MiB, so no setting makes a head unbounded.
    var effectiveMaxHeaderBytes: Int { max(0, min(maxHeaderBytes, 1 << 20)) }

    /// ``requestTimeoutSeconds`` as applied: nil for no timeout, else at most a year (a
    /// larger number of seconds would overflow the nanoseconds SwiftNIO counts in).
    var effectiveRequestTimeoutSeconds: Int64? {
        requestTimeoutSeconds > 0 ? min(requestTimeoutSeconds, 365 * 24 * 3600) : nil
    }
}
