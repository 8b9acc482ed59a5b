/// Bounds on what one server accepts. Params are checked before they are allocated, and a
/// connection over `maxConnections` is closed as soon as it is accepted.
///
/// Every buffer a web server (or an attacker in front of it) can make this process fill has
/// a limit here, so memory stays flat whatever arrives on the socket.
public struct ServerLimits: Sendable {
    /// Bytes of `FCGI_PARAMS` per request (all names and values with their lengths).
    public var maxParamsBytes: Int = 1 << 20
    /// Bytes of `FCGI_PARAMS` held at once for the requests of one connection whose params
    /// have not ended, so multiplexed requests cannot multiply `maxParamsBytes`.
    public var maxParamsBytesPerConnection: Int = 16 << 20
    /// Name-value pairs per request.
    public var maxParamsPairs: Int = 4096
    /// Requests in flight on one connection; more are answered `FCGI_OVERLOADED`.
    public var maxRequestsPerConnection: Int = 1024
    /// Open connections; more are closed at once, with a log line.
    public var maxConnections: Int = 4096
    /// Requests in flight in the whole server; more are answered `FCGI_OVERLOADED`.
    public var maxRequests: Int = 16384
    /// Request body bytes. A larger `CONTENT_LENGTH` is answered `413` without running the
    /// app; a body without one fails with `RequestBodyTooLarge` (a `413` too) once it passes.
    public var maxBodyBytes: Int = 1 << 30
    /// Request body bytes buffered per connection (all its requests together) while the
    /// applications do not read them; past this the connection stops reading until they catch
    /// up. Counted by what the buffered bytes retain: a small slice of a receive buffer is
    /// copied out of it, a large one counts its whole receive buffer.
    public var bodyBufferBytes: Int = 256 << 10
    /// Response bytes queued for the socket per connection (replies to management records,
    /// STDOUT, STDERR, END_REQUEST). Past this the connection stops reading and decoding, and
    /// response writers wait, until the web server reads.
    public var outputBufferBytes: Int = 256 << 10
    /// Seconds a connection may stay open with nothing arriving and no application running
    /// (requests whose params never ended do not count); 0 or less never closes one.
    public var idleTimeoutSeconds: Int64 = 300
    /// Seconds a request's params may take from its `FCGI_BEGIN_REQUEST` to their end, however
    /// steadily they trickle in (nginx's `client_header_timeout`); past it the connection is
    /// closed. 0 or less: no limit.
    public var paramsTimeoutSeconds: Int64 = 60
    /// Seconds a started request may wait for body bytes, or a connection for its socket to
    /// take output, without progress (nginx's `fastcgi_send_timeout`): the body's reader then
    /// fails, and a connection whose output is stuck is closed. 0 or less: no limit.
    public var stallTimeoutSeconds: Int64 = 60
    /// Seconds a closing connection gets to flush its output and drain its input before it
    /// is closed regardless. 0 or less: no limit.
    public var closeTimeoutSeconds: Int64 = 5

    /// The defaults.
    public init() {}
}
