import FastCGI
import Logging
import NIOCore
import Synchronization

/// What all connections of one server share: configuration, counters and the list of open
/// connections (for graceful shutdown).
final class ServerState: Sendable {
    let limits: ServerLimits
    let logger: Logger
    let allowedPeers: WebServerAllowList?
    /// Whether other processes may share the listening socket (it was inherited).
    let multiprocess: Bool
    /// The roles requests may ask for; others get `FCGI_UNKNOWN_ROLE`. Filter is never among
    /// them: its DATA stream is not implemented, so configuring it changes nothing.
    let roles: Set<Role>
    /// The status page's and the metrics' figures (shared by every listener of a process).
    let statistics: ServerStatistics
    private let inFlightRequests = Atomic<Int>(0)
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let shuttingDown = Atomic<Bool>(false)

    init(
        limits: ServerLimits,
        logger: Logger,
        allowedPeers: WebServerAllowList?,
        multiprocess: Bool,
        roles: Set<Role>,
        statistics: ServerStatistics = ServerStatistics()
    ) {
        self.statistics = statistics
        self.multiprocess = multiprocess
        self.roles = roles.intersection([.responder, .authorizer])
        self.limits = limits
        self.logger = logger
        self.allowedPeers = allowedPeers
    }

    /// Reserves a slot for one more request; false when the server is at `maxRequests`.
    func tryAcquireRequest() -> Bool {
        let (_, new) = inFlightRequests.add(1, ordering: .relaxed)
        if new > limits.maxRequests {
            inFlightRequests.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseRequest() {
        inFlightRequests.subtract(1, ordering: .relaxed)
    }

    /// Registers a new connection; false when the server is at `maxConnections` or stopping.
    func register(_ channel: any Channel) -> Bool {
        let registered = connections.withLock { connections in
            guard connections.count < limits.maxConnections, !shuttingDown.load(ordering: .relaxed) else {
                return false
            }
            connections[ObjectIdentifier(channel)] = channel
            return true
        }
        statistics.connectionAccepted(opened: registered)
        return registered
    }

    func unregister(_ channel: any Channel) {
        let removed = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        if removed != nil { statistics.connectionClosed() }
    }

    var connectionCount: Int { connections.withLock { $0.count } }

    /// The connections open right now.
    var openConnections: [any Channel] { connections.withLock { Array($0.values) } }

    /// Marks the server as stopping and returns the open connections, to be closed once idle.
    func beginShutdown() -> [any Channel] {
        shuttingDown.store(true, ordering: .relaxed)
        return connections.withLock { Array($0.values) }
    }

    var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }
}
