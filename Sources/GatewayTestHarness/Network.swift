import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Finds free TCP ports on 127.0.0.1 for servers the tests start.
public enum PortAllocator {
    /// A port nothing listens on right now (the kernel's choice for an ephemeral bind).
    /// Another process could take it before the caller binds it; the window is tiny.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TransportError("socket failed: errno \(errno)") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TransportError("bind failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        guard let fd = try? connect(port: port) else { return false }
        close(fd)
        return true
    }

    /// Whether something accepts TCP connections on the loopback address 127.0.0.`host`:`port`
    /// (tests give backends addresses of their own: 127.0.0.2, 127.0.0.3, …).
    public static func isListening(loopbackHost host: UInt8, port: Int) -> Bool {
        var address = loopback(port: port)
        address.sin_addr.s_addr = (UInt32(0x7f00_0000) | UInt32(host)).bigEndian
        guard case .success(let fd) = connect(family: AF_INET, to: address) else { return false }
        close(fd)
        return true
    }

    /// Whether something accepts connections on the Unix socket at `path`.
    public static func isListening(unixSocket path: String) -> Bool {
        guard case .success(let fd) = connect(unixSocket: path) else { return false }
        close(fd)
        return true
    }

    /// A connected, blocking socket to the Unix socket at `path`, or the `errno` of the failure
    /// (`ECONNREFUSED` for a stale socket file, `ENOENT` when there is none).
    public static func connect(unixSocket path: String) -> Result<Int32, UnixSocketError> {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            return .failure(UnixSocketError(path: path, code: ENAMETOOLONG))
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return connect(family: AF_UNIX, to: address).mapError { UnixSocketError(path: path, code: $0.code) }
    }

    /// A connected, blocking TCP socket to 127.0.0.1:`port`.
    static func connect(port: Int) throws -> Int32 {
        switch connect(family: AF_INET, to: loopback(port: port)) {
        case .success(let fd):
            return fd
        case .failure(let error):
            throw TransportError("connect to 127.0.0.1:\(port) failed: \(String(cString: strerror(error.code)))")
        }
    }

    /// A blocking stream socket of `family` connected to `address` (a `sockaddr_un` or
    /// `sockaddr_in`), or the `errno` of `socket` or `connect`: what both connects share.
    private static func connect<Address>(family: Int32, to address: Address) -> Result<Int32, Errno> {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Errno(code: errno)) }
        let result = withUnsafePointer(to: address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            return .failure(Errno(code: code))
        }
        return .success(fd)
    }

    /// An `errno` value as an error.
    private struct Errno: Error {
        let code: Int32
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }
}

/// A tiny HTTP/1.1 client for tests: one request per connection (`Connection: close`),
/// sending the body while reading the response (so an echo of a large body cannot deadlock),
/// the whole exchange bounded by a timeout.
public enum HTTPClient {
    /// Sends `method target` with `headers` and `body` to 127.0.0.1:`port` and returns the
    /// parsed response (chunked bodies de-chunked).
    public static func send(
        port: Int,
        method: String,
        target: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        timeout: Duration = .seconds(60)
    ) async throws -> TestResponse {
        try await onDedicatedThread {
            signal(SIGPIPE, SIG_IGN)
            var head = "\(method) \(target) HTTP/1.1\r\n"
            let names = Set(headers.map { $0.name.lowercased() })
            if !names.contains("host") { head += "Host: 127.0.0.1:\(port)\r\n" }
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            if !body.isEmpty && !names.contains("content-length") { head += "Content-Length: \(body.count)\r\n" }
            head += "Connection: close\r\n\r\n"
            let fd = try PortAllocator.connect(port: port)
            let received = try IOPump.run(
                writing: (fd, Array(head.utf8) + body, false),
                reading: [fd],
                deadline: .now + timeout
            )
            return try ResponseParser.parseHTTP(received[0])
        }
    }
}

/// Sends requests through a real web server listening on 127.0.0.1.
public struct HTTPTransport: GatewayTransport {
    /// The name test output shows for this transport.
    public let name: String
    /// The server's port on 127.0.0.1.
    public let port: Int
    /// The URL path the application is mounted at, put before each request's target.
    public let mountPoint: String
    /// How long one exchange may take.
    public var timeout: Duration

    /// A transport for the application at `mountPoint` on 127.0.0.1:`port`.
    public init(name: String, port: Int, mountPoint: String, timeout: Duration = .seconds(60)) {
        self.name = name
        self.port = port
        self.mountPoint = mountPoint
        self.timeout = timeout
    }

    /// Sends the request over HTTP/1.1 to the web server.
    public func perform(_ request: TestRequest) async throws -> TestResponse {
        try await HTTPClient.send(
            port: port,
            method: request.method,
            target: mountPoint + request.target,
            headers: request.headers,
            body: request.body,
            timeout: timeout
        )
    }
}

/// A failed connection to a Unix socket: which path, and the `errno`.
public struct UnixSocketError: Error, CustomStringConvertible {
    /// The socket's path.
    public let path: String
    /// The `errno` of `socket` or `connect`.
    public let code: Int32
    /// The path and `errno`, for the test failure.
    public var description: String { "cannot connect to \(path): errno \(code)" }
}
