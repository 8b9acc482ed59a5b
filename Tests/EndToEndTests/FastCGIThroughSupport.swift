import Foundation
import GatewayTestHarness
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The three ways the shipped configurations put an app behind a web server over FastCGI.
enum FastCGIDeployment: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// nginx, one FastCGI connection per request (`nginx/fastcgi-unix-plain.conf`).
    case nginx
    /// nginx with kept FastCGI connections (`nginx/fastcgi-unix.conf`, the default).
    case nginxKeepAlive
    /// Apache mod_proxy_fcgi reusing connections (`apache/proxy-fcgi.conf`).
    case apache

    var testDescription: String {
        switch self {
        case .nginx: "nginx (fastcgi-unix-plain.conf)"
        case .nginxKeepAlive: "nginx keep-alive (fastcgi-unix.conf)"
        case .apache: "Apache mod_proxy_fcgi (proxy-fcgi.conf)"
        }
    }

    var isNginx: Bool { self != .apache }

    /// The status a web server answers with when the app is not there.
    var backendDownStatus: Int { self == .apache ? 503 : 502 }

    /// Starts the web server in front of the app listening in `socketDirectory`. Besides the
    /// shipped snippet it serves `/secure/…` with `HTTPS` set, as a TLS server would, and
    /// (nginx) `nginx/fastcgi-streaming.conf` and `nginx/fastcgi-path-info.conf`.
    func startWebServer(socketDirectory: String) async throws -> WebServerInstance {
        let socket = socketDirectory + "/app.sock"
        switch self {
        case .nginx, .nginxKeepAlive:
            let main = try ShippedConfig.load(
                self == .nginx ? "nginx/fastcgi-unix-plain.conf" : "nginx/fastcgi-unix.conf",
                socketDirectory: socketDirectory
            )
            let split = ShippedConfig.splitNginx(main)
            let streaming = try ShippedConfig.load("nginx/fastcgi-streaming.conf", socketDirectory: socketDirectory)
            let pathInfo = try ShippedConfig.load("nginx/fastcgi-path-info.conf", socketDirectory: socketDirectory)
            let pass =
                self == .nginx ? "fastcgi_pass unix:\(socket);" : "fastcgi_keep_conn on;\nfastcgi_pass swift_gateway;"
            let secure = """
                location /secure/ {
                    include fastcgi_params;
                    fastcgi_param SCRIPT_NAME "";
                    fastcgi_param PATH_INFO $uri;
                    fastcgi_param HTTPS on;
                    \(pass)
                }
                """
            return try await NginxFastCGI.start(
                name: testDescription,
                httpContext: split.http,
                serverContext: [split.server, streaming, pathInfo, secure].joined(separator: "\n")
            )
        case .apache:
            let main = try ShippedConfig.load("apache/proxy-fcgi.conf", socketDirectory: socketDirectory)
            let secure = """
                <Location "/secure">
                    SetEnv HTTPS on
                </Location>
                """
            return try await ApacheFastCGI.start(name: testDescription, serverContext: main + "\n" + secure)
        }
    }

    /// Arguments the app needs so that this web server's workers may use its socket.
    var appArguments: [String] {
        if self == .apache, let group = ApacheFastCGI.workerGroup { return ["--socket-group", group] }
        return []
    }
}

/// An app and a web server in front of it, both started for one test.
struct FastCGISetup {
    let app: FastCGIAppProcess
    let server: WebServerInstance
    let socketDirectory: TemporaryDirectory
    var port: Int { server.port }

    /// What went wrong, for a failure message: both logs' tails.
    var logs: String {
        "--- app log:\n\(app.logTail)\n--- \(server.name) error log:\n\(String(server.errorLog.suffix(4096)))"
    }

    /// Starts `program` (gateway-probe by default) and `deployment` in front of it, runs `body`,
    /// and stops both whatever happens.
    static func with(
        _ deployment: FastCGIDeployment,
        program: String = "gateway-probe",
        launch: FastCGIAppProcess.Launch = .socketFlag,
        _ body: (FastCGISetup) async throws -> Void
    ) async throws {
        let executable = try BuiltProducts.executable(named: program)
        let directory = try TemporaryDirectory(prefix: "swift-gateway-app-")
        defer { directory.remove() }
        try await FastCGIAppProcess.with({
            try await FastCGIAppProcess.start(
                executable,
                socketPath: directory.path + "/app.sock",
                launch: launch,
                extraArguments: deployment.appArguments,
                logFile: directory.path + "/app.log"
            )
        }) { app in
            try await WebServerInstance.with({ try await deployment.startWebServer(socketDirectory: directory.path) }) {
                server in
                let setup = FastCGISetup(app: app, server: server, socketDirectory: directory)
                do {
                    try await body(setup)
                } catch {
                    Issue.record("\(error)\n\(setup.logs)")
                }
            }
        }
    }
}

/// A response read whole, for small bodies.
struct SmallResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    subscript(header name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The body parsed as the probe's `/environ` JSON object.
    func environ() throws -> [String: String] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: String] else {
            throw TransportError("not a JSON object of strings: \(text)")
        }
        return object
    }
}

/// One request on its own connection, through the web server on 127.0.0.1:`port`.
func send(
    port: Int,
    _ method: String,
    _ target: String,
    headers: [(name: String, value: String)] = [],
    body: [UInt8] = [],
    timeout: Duration = .seconds(30)
) async throws -> SmallResponse {
    try await onDedicatedThread {
        let connection = try HTTPStreamConnection(port: port)
        defer { connection.close() }
        var response = SmallResponse(status: 0, headers: [], body: [])
        try connection.exchange(
            method: method,
            target: target,
            headers: headers,
            bodyLength: body.count,
            body: { offset, count in Array(body[offset..<offset + count]) },
            deadline: .now + timeout,
            onHead: { head in
                response.status = head.status
                response.headers = head.headers
            },
            onBody: { bytes in
                response.body.append(contentsOf: bytes)
                return true
            }
        )
        return response
    }
}

/// A deterministic byte stream too large to keep twice: byte `i` is `pattern[i % period]`,
/// with a prime period, so a lost, repeated or reordered chunk of any power-of-two size shows.
enum PatternBody {
    static let period = 1_000_003
    static let pattern: [UInt8] = {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<period).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 32)
        }
    }()

    /// `count` bytes of the stream from `offset`.
    static func bytes(at offset: Int, count: Int) -> [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(count)
        var position = offset % period
        var left = count
        while left > 0 {
            let take = min(left, period - position)
            result.append(contentsOf: pattern[position..<position + take])
            left -= take
            position = 0
        }
        return result
    }

    /// Whether `received` equals the stream from `offset`.
    static func matches(_ received: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var position = offset % period
        var index = 0
        return pattern.withUnsafeBytes { pattern in
            while index < received.count {
                let take = min(received.count - index, period - position)
                if memcmp(received.baseAddress! + index, pattern.baseAddress! + position, take) != 0 { return false }
                index += take
                position = 0
            }
            return true
        }
    }
}

/// `count` bytes of `x` from a buffer compared with `memcmp`.
enum RepeatedX {
    static let block = [UInt8](repeating: UInt8(ascii: "x"), count: 256 * 1024)

    static func matches(_ received: UnsafeRawBufferPointer) -> Bool {
        block.withUnsafeBytes { block in
            var index = 0
            while index < received.count {
                let take = min(received.count - index, block.count)
                if memcmp(received.baseAddress! + index, block.baseAddress!, take) != 0 { return false }
                index += take
            }
            return true
        }
    }
}

/// A figure worth reporting, printed so it lands in the test log.
func reportFigure(_ text: String) {
    print("e2e figure: \(text)")
}

/// Seconds since `start`, as a Double.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Signs in an app log that it crashed.
func crashSigns(in log: String) -> [String] {
    ["Fatal error", "fatal error", "Segmentation fault", "Illegal instruction", "Crash", "SIGPIPE", "Backtrace"]
        .filter { log.contains($0) }
}
