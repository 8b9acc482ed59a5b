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

/// Where the server listens, once it does: what ``GatewayHTTPServer/localAddress`` waits for.
final class ListeningAddress: Sendable {
    private enum State {
        case waiting([CheckedContinuation<SocketAddress, any Error>])
        case listening(SocketAddress)
        case failed(any Error)
    }

    private let state = Mutex(State.waiting([]))

    func resolve(_ result: Result<SocketAddress, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<SocketAddress, any Error>] in
            guard case .waiting(let waiters) = state else { return [] }
            switch result {
            case .success(let address): state = .listening(address)
            case .failure(let error): state = .failed(error)
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    func wait() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<SocketAddress, any Error>? in
                switch state {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                    return nil
                case .listening(let address): return .success(address)
                case .failed(let error): return .failure(error)
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
