import FastCGI
import FastCGIServer
import Gateway
import Logging
import NIOCore
import Synchronization

/// A `FastCGIServer` running inside the test process on a fresh Unix socket, for tests that
/// need their own application or `ServerLimits`. Its log lines are recorded.
public final class FastCGIInProcessServer: Sendable {
    /// The socket it listens on.
    public let socketPath: String
    /// What it logged.
    public let log: RecordedLog
    private let directory: TemporaryDirectory
    private let task: Task<Void, any Error>

    private init(socketPath: String, directory: TemporaryDirectory, log: RecordedLog, task: Task<Void, any Error>) {
        self.socketPath = socketPath
        self.directory = directory
        self.log = log
        self.task = task
    }

    /// Starts `application` with `limits`, playing `roles`, and returns once it accepts
    /// connections (at most 10 s).
    public static func start<App: GatewayApplication>(
        _ application: App,
        limits: ServerLimits = ServerLimits(),
        shutdownGracePeriod: Duration = .seconds(2),
        roles: Set<Role> = [.responder]
    ) async throws -> FastCGIInProcessServer {
        // Under /tmp, short, so that the socket path fits `sun_path`.
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        let socketPath = directory.path + "/fcgi.sock"
        let log = RecordedLog()
        let recorder = log
        var logger = Logger(label: "test-server") { _ in RecordingLogHandler(log: recorder) }
        logger.logLevel = .debug
        let configuration = FastCGIServer<App>.Configuration(
            address: .unix(path: socketPath),
            limits: limits,
            shutdownGracePeriod: shutdownGracePeriod,
            roles: roles,
            logger: logger
        )
        let server = FastCGIServer(application: application, configuration: configuration)
        let (listening, continuation) = AsyncStream<Void>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await server.run { _ in continuation.yield() }
        }
        let started = FastCGIInProcessServer(socketPath: socketPath, directory: directory, log: log, task: task)
        let timeout = Task {
            try await Task.sleep(for: .seconds(10))
            continuation.finish()
        }
        defer { timeout.cancel() }
        var iterator = listening.makeAsyncIterator()
        guard await iterator.next() != nil else {
            await started.stop()
            let reason = await task.result
            throw TransportError("in-process server did not start: \(reason)")
        }
        return started
    }

    /// Stops the server (cancels its run: connections are closed at once) and removes its directory.
    public func stop() async {
        task.cancel()
        _ = await task.result
        directory.remove()
    }
}

/// Log lines recorded by a ``RecordingLogHandler``.
public final class RecordedLog: Sendable {
    private let lines = Mutex<[String]>([])

    /// An empty log.
    public init() {}

    /// Every line so far, as `LEVEL message`.
    public var entries: [String] { lines.withLock { $0 } }

    /// Whether a line containing `text` was logged.
    public func contains(_ text: String) -> Bool {
        lines.withLock { $0.contains { $0.contains(text) } }
    }

    func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }
}

/// A swift-log handler that keeps lines in a ``RecordedLog``.
public struct RecordingLogHandler: LogHandler {
    /// Metadata attached to every line, as `LogHandler` requires.
    public var metadata: Logger.Metadata = [:]
    /// The lowest level kept: `.debug`, so tests see every line.
    public var logLevel: Logger.Level = .debug
    let log: RecordedLog

    /// A handler writing into `log`.
    public init(log: RecordedLog) {
        self.log = log
    }

    /// One metadata value, as `LogHandler` requires.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Keeps the line as `level message` for the test to read.
    public func log(event: LogEvent) {
        log.append("\(event.level) \(event.message)")
    }
}
