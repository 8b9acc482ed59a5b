import FastCGI
import GatewayTestHarness
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue #4's proof: the FastCGI server driven over real sockets, by the project's own test
/// client and by independent ones (`cgi-fcgi`, `spawn-fcgi`).
///
/// Serialized as a whole: most tests start a server process, several measure time or memory,
/// and the machine has two cores.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct FastCGIServerTests {}

/// Runs `body` against a fresh `gateway-probe --socket … arguments`, then checks that the
/// server is still alive (nothing a test sends may crash it) and stops it.
func withProbe<R>(
    _ arguments: [String] = [],
    environment: [String: String] = [:],
    checkAlive: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (FastCGIAppProcess) async throws -> R
) async throws -> R {
    let probe = try await FastCGIAppProcess.startProbe(arguments, environment: environment)
    do {
        let result = try await body(probe)
        if checkAlive {
            #expect(probe.isRunning, "server died; log:\n\(probe.log)", sourceLocation: sourceLocation)
        }
        await probe.cleanUp()
        return result
    } catch {
        Issue.record("failed; the server's log:\n\(probe.log.suffix(4000))", sourceLocation: sourceLocation)
        await probe.cleanUp()
        throw error
    }
}

extension FastCGIAppProcess {
    /// A new test client connected to this server's socket.
    func connect() async throws -> FastCGITestClient {
        try await FastCGITestClient.connect(unixPath: socketPath)
    }

    /// Runs one request on a fresh connection, closing it afterwards.
    func perform(_ request: FastCGITestRequest) async throws -> FastCGITestResponse {
        try await withStarted({ try await connect() }, stop: { await $0.close() }) { try await $0.perform(request) }
    }

    /// Resident set size in KiB (`VmRSS`), the unit the memory checks here are written in.
    var residentKiB: Int? { memory.map { $0.resident / 1024 } }

    /// A fresh connection is served: `GET /hello` answers `Hello, world!`.
    func expectServesFreshConnection(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let response = try await perform(.get("/hello"))
        #expect(response.status == 200, sourceLocation: sourceLocation)
        #expect(response.bodyString == "Hello, world!", sourceLocation: sourceLocation)
        #expect(isRunning, sourceLocation: sourceLocation)
    }
}

extension FastCGITestResponse {
    /// Asserts a normal, well-formed end: empty STDOUT, then END_REQUEST(REQUEST_COMPLETE, appStatus).
    func expectCompleted(appStatus: UInt32? = 0, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(stdoutEnded, "no empty STDOUT record", sourceLocation: sourceLocation)
        #expect(stdoutAfterEnd == 0, "STDOUT after its end", sourceLocation: sourceLocation)
        #expect(protocolStatus == .requestComplete, sourceLocation: sourceLocation)
        if let appStatus {
            #expect(self.appStatus == appStatus, sourceLocation: sourceLocation)
        }
    }
}

/// Builds raw records for framing and hostile tests.
struct Records {
    var buffer = ByteBuffer()

    mutating func record(
        _ type: RecordType,
        id: UInt16,
        _ content: [UInt8] = [],
        padding: UInt8 = 0,
        version: UInt8 = 1
    ) {
        RequestEncoder.writeRecord(
            type: type.rawValue,
            requestID: id,
            content: content,
            paddingLength: padding,
            version: version,
            into: &buffer
        )
    }

    mutating func raw(type: UInt8, id: UInt16, _ content: [UInt8] = [], padding: UInt8 = 0) {
        RequestEncoder.writeRecord(type: type, requestID: id, content: content, paddingLength: padding, into: &buffer)
    }

    mutating func begin(id: UInt16, role: UInt16 = 1, keepConnection: Bool = false, padding: UInt8 = 0) {
        let flags: UInt8 = keepConnection ? 1 : 0
        record(.beginRequest, id: id, [UInt8(role >> 8), UInt8(role & 0xff), flags, 0, 0, 0, 0, 0], padding: padding)
    }

    mutating func params(id: UInt16, _ pairs: [(String, String)]) {
        RequestEncoder.writeParams(pairs, requestID: id, into: &buffer)
    }

    mutating func stdinEnd(id: UInt16) {
        record(.stdin, id: id)
    }

    mutating func request(_ request: FastCGITestRequest) {
        var encoded = request.encoded()
        buffer.writeBuffer(&encoded)
    }

    var bytes: [UInt8] { Array(buffer.readableBytesView) }
}

/// Name-value pair bytes (§3.4), optionally with 4-byte lengths.
func pairBytes(_ name: String, _ value: String, long: Bool = false) -> [UInt8] {
    var buffer = ByteBuffer()
    RequestEncoder.writeNameValuePair(
        name: Array(name.utf8),
        value: Array(value.utf8),
        forceLongLengths: long,
        into: &buffer
    )
    return Array(buffer.readableBytesView)
}

/// Parses the probe's flat JSON object of strings (no nesting; the escapes the probe writes).
func parseFlatJSON(_ text: String) -> [String: String]? {
    var parser = FlatJSONParser(scalars: Array(text.unicodeScalars)[...])
    return parser.object()
}

private struct FlatJSONParser {
    var scalars: ArraySlice<Unicode.Scalar>

    mutating func object() -> [String: String]? {
        var result: [String: String] = [:]
        guard take() == "{" else { return nil }
        if scalars.first == "}" { return result }
        while true {
            guard let key = string(), take() == ":", let value = string() else { return nil }
            result[key] = value
            switch take() {
            case "}": return result
            case ",": continue
            default: return nil
            }
        }
    }

    private mutating func take() -> Unicode.Scalar? {
        scalars.popFirst()
    }

    private mutating func string() -> String? {
        guard take() == "\"" else { return nil }
        var out = String.UnicodeScalarView()
        while let scalar = take() {
            switch scalar {
            case "\"": return String(out)
            case "\\":
                switch take() {
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "u":
                    let hex = String(String.UnicodeScalarView(scalars.prefix(4)))
                    scalars = scalars.dropFirst(4)
                    guard let value = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(value) else { return nil }
                    out.append(decoded)
                case let escaped?: out.append(escaped)
                case nil: return nil
                }
            default: out.append(scalar)
            }
        }
        return nil
    }
}

/// How long `body` takes.
func measure(_ body: () async throws -> Void) async rethrows -> Duration {
    let start = ContinuousClock.now
    try await body()
    return ContinuousClock.now - start
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
