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
    /// Request body bytes buffered per request while the application does not read them;
    /// past this the connection stops reading until the application catches up.
    public var bodyBufferBytes: Int = 256 << 10
    /// Seconds a connection may stay open with nothing arriving and no application running
    /// (requests whose params never ended do not count); 0 or less never closes one.
    public var idleTimeoutSeconds: Int64 = 300
    /// Seconds a request's params may take from its `FCGI_BEGIN_REQUEST` to their end, however
    /// the bytes trickle in (nginx's `client_header_timeout` is the model).
    public var paramsTimeoutSeconds: Int64 = 60
    /// Seconds a started request may wait for body bytes, or for the socket to take its
    /// output, before it is failed (nginx's `fastcgi_send_timeout`/`send_timeout`).
    public var stallTimeoutSeconds: Int64 = 60
    /// Seconds a closing connection gets to flush what it wrote before it is closed anyway.
    public var closeTimeoutSeconds: Int64 = 5
    /// Bytes of output a connection holds unsent before it stops reading (replies to
    /// management records, pipelined responses and `FCGI_STDERR` included).
    public var outputBufferBytes: Int = 1 << 20

    /// The defaults.
    public init() {}
}
