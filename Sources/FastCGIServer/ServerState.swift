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
    private let connections = Mutex(Connections())

    /// The open connections, and whether shutdown began, under one lock: a connection
    /// registers either before shutdown (and is told by `beginShutdown`'s caller) or after.
    private struct Connections {
        var open: [ObjectIdentifier: any Channel] = [:]
        /// Accepted, and neither registered (active) nor closed yet.
        var settingUp: Set<ObjectIdentifier> = []
        /// Set once shutdown begins: how long idle connections stay open for a request
        /// already on its way.
        var shutdownLinger: Duration?
    }

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

    /// What `register` decided for a new connection.
    enum Registration {
        /// The server is at `maxConnections`: close it.
        case refused
        /// Serve it; a linger means the server is shutting down (the connection came from the
        /// listening socket's backlog), so it drains as the connections open at shutdown do.
        case registered(shutdownLinger: Duration?)
    }

    /// The listening socket accepted `channel`; it registers once active, or closes first.
    func accepted(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        _ = connections.withLock { $0.settingUp.insert(id) }
        channel.closeFuture.whenComplete { _ in _ = self.connections.withLock { $0.settingUp.remove(id) } }
    }

    /// Registers a new connection.
    func register(_ channel: any Channel) -> Registration {
        let registration = connections.withLock { connections -> Registration in
            connections.settingUp.remove(ObjectIdentifier(channel))
            guard connections.open.count < limits.maxConnections else { return .refused }
            connections.open[ObjectIdentifier(channel)] = channel
            return .registered(shutdownLinger: connections.shutdownLinger)
        }
        let opened = if case .registered = registration { true } else { false }
        statistics.connectionAccepted(opened: opened)
        return registration
    }

    func unregister(_ channel: any Channel) {
        let removed = connections.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
        if removed != nil { statistics.connectionClosed() }
    }

    /// Connections accepted and not yet registered or closed.
    var connectionsSettingUp: Int { connections.withLock { $0.settingUp.count } }

    /// Connections accepted and not closed yet (a closing one may be counted a moment longer).
    var connectionCount: Int { connections.withLock { $0.open.count + $0.settingUp.count } }

    /// The connections open right now.
    var openConnections: [any Channel] { connections.withLock { Array($0.open.values) } }

    /// Marks the server as stopping and returns the open connections, each to be told so.
    /// Connections registered from now on learn it from `register`.
    func beginShutdown(linger: Duration) -> [any Channel] {
        connections.withLock { connections in
            connections.shutdownLinger = linger
            return Array(connections.open.values)
        }
    }

}
