import FastCGI
import GatewayTestHarness
import Logging
import ServiceLifecycle
import SwiftGateway
import Synchronization

/// One log record an app's handler received.
struct LogRecord: Sendable {
    let level: Logger.Level
    let label: String
    let message: String
    let metadata: [String: String]
}

/// The records of every logger made with ``CapturingLogHandler`` for one test.
final class LogRecords: Sendable {
    private let records = Mutex<[LogRecord]>([])

    func append(_ record: LogRecord) { records.withLock { $0.append(record) } }
    var all: [LogRecord] { records.withLock { $0 } }

    /// A logger whose lines land here, as a JSON or journald handler's would land in a file.
    func logger(label: String) -> Logger {
        Logger(label: label) { CapturingLogHandler(label: $0, records: self) }
    }
}

/// A log handler an app could have bootstrapped (a JSON one, say): it keeps every field.
struct CapturingLogHandler: LogHandler {
    let label: String
    let records: LogRecords
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
        records.append(
            LogRecord(level: event.level, label: label, message: event.message.description, metadata: merged)
        )
    }
}

/// A second service of the app: it records that it ran and that graceful shutdown stopped it.
struct SidecarService: Service {
    let logger: Logger

    func run() async {
        logger.info("sidecar started")
        try? await gracefulShutdown()
        logger.info("sidecar stopped")
    }
}

/// Connects to a Unix socket, retrying until the server listens (at most `timeout`).
func connect(unixPath: String, timeout: Duration = .seconds(20)) async throws -> FastCGITestClient {
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            return try await FastCGITestClient.connect(unixPath: unixPath)
        } catch {
            if ContinuousClock.now >= deadline { throw error }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
