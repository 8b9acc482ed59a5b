public import Gateway
import Synchronization

/// Calls an application in this process: builds the environ a CGI server would (from
/// ``CGIEnvironment``), runs it through `ResponseDriver` into memory and parses the CGI
/// output, so status, headers and body are exactly what a server would send on.
public struct InProcessTransport<App: GatewayApplication>: GatewayTransport {
    /// The name test output shows for this transport.
    public let name = "in-process"
    /// The application under test.
    public let application: App
    /// How requests become variables; by default mounted at `""` like the probe contract.
    public var environment: CGIEnvironment

    /// A transport calling `application`.
    public init(_ application: App, environment: CGIEnvironment = CGIEnvironment(scriptName: "")) {
        self.application = application
        self.environment = environment
    }

    /// Runs the request through the application in this process.
    public func perform(_ request: TestRequest) async throws -> TestResponse {
        let (response, _) = try await performReportingOutcome(request)
        return response
    }

    /// Like ``perform(_:)``, also returning how the `ResponseDriver` saw the response end.
    public func performReportingOutcome(_ request: TestRequest) async throws -> (TestResponse, ResponseOutcome) {
        let errors = ErrorCollector()
        let variables = CGIVariables(environment.variables(for: request).map { ($0.name, $0.value) })
        let environ = Environ(
            variables: variables,
            input: GatewayRequestBody(bytes: request.body),
            errors: errors.stream,
            multithread: true,
            multiprocess: false,
            runOnce: false
        )
        var output = MemoryOutput()
        let outcome = await ResponseDriver.run(application, environ: environ, output: &output)
        var response = try ResponseParser.parseCGI(output.bytes)
        response.errors = errors.text
        return (response, outcome)
    }
}

/// A `ResponseOutput` that keeps everything in memory and records each `send`.
public struct MemoryOutput: ResponseOutput {
    /// Everything sent, head and body bytes, in order.
    public var bytes: [UInt8] = []
    /// Each `send` call: head bytes, body bytes and whether it was the last.
    public var sends: [(head: [UInt8], body: [UInt8], isLast: Bool)] = []
    /// When set, the send with this index (0-based) throws, as if the client went away.
    public var failAtSend: Int?

    /// An empty output; `failAtSend` makes that send throw.
    public init(failAtSend: Int? = nil) {
        self.failAtSend = failAtSend
    }

    /// Keeps the bytes, or throws at the send chosen to fail, to simulate a client that goes away.
    nonisolated(nonsending) public mutating func send(head: [UInt8], body: [UInt8], isLast: Bool) async throws {
        if sends.count == failAtSend { throw TransportError("client went away (simulated)") }
        sends.append((head, body, isLast))
        bytes += head
        bytes += body
    }
}

/// Collects what is written to an `ErrorStream`.
public final class ErrorCollector: Sendable {
    private let lines = Mutex<[String]>([])

    /// An empty collector.
    public init() {}

    /// A stream appending to this collector.
    public var stream: ErrorStream { ErrorStream { [self] message in self.lines.withLock { $0.append(message) } } }

    /// Every message written, in order.
    public var messages: [String] { lines.withLock { $0 } }

    /// All messages concatenated.
    public var text: String { messages.joined() }
}
