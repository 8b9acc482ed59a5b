import Logging
import NIOCore
import Synchronization

/// What the connections of one server share: its limits, its logger, and the set of open
/// connections (for the connection limit and graceful shutdown).
final class HTTPServerState: Sendable {
    let limits: HTTPServerLimits
    let logger: Logger
    /// `SERVER_NAME`: the host the server was asked to listen on, as nginx's `server_name`.
    let serverName: String
    private let connections = Mutex<(open: [ObjectIdentifier: any Channel], shuttingDown: Bool)>(([:], false))

    init(limits: HTTPServerLimits, logger: Logger, serverName: String) {
        self.limits = limits
        self.logger = logger
        self.serverName = serverName
    }

    /// Admits a new connection; false when shutting down or at the connection limit.
    func register(_ channel: any Channel) -> Bool {
        connections.withLock { state in
            guard !state.shuttingDown, state.open.count < limits.maxConnections else { return false }
            state.open[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func unregister(_ channel: any Channel) {
        _ = connections.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var isShuttingDown: Bool { connections.withLock { $0.shuttingDown } }

    var openConnections: [any Channel] { connections.withLock { Array($0.open.values) } }

    /// Refuses new connections from now on and returns those open.
    func beginShutdown() -> [any Channel] {
        connections.withLock { state in
            state.shuttingDown = true
            return Array(state.open.values)
        }
    }
}
