import GatewayTestHarness
import Synchronization

/// The processes a test starts along the way (backends, their successors), every one stopped
/// before the test returns, however it ends. A `defer { Task { … } }` is not enough: the test
/// process may finish before such a task stops the last of them, which then runs on.
final class StartedProcesses: Sendable {
    private let stops = Mutex<[@Sendable () async -> Void]>([])

    /// Runs `body`, then stops (in reverse order) every process it registered.
    static func with<T>(_ body: (StartedProcesses) async throws -> T) async throws -> T {
        let started = StartedProcesses()
        do {
            let result = try await body(started)
            await started.stopAll()
            return result
        } catch {
            await started.stopAll()
            throw error
        }
    }

    /// Registers `app`; returns it.
    @discardableResult
    func add(_ app: FastCGIAppProcess) -> FastCGIAppProcess {
        stops.withLock { $0.append { await app.stop(timeout: .seconds(5)) } }
        return app
    }

    /// Registers `process`; returns it.
    @discardableResult
    func add(_ process: RunningProcess) -> RunningProcess {
        stops.withLock { $0.append { await process.stop() } }
        return process
    }

    /// Registers any other way of stopping what the test started.
    func add(stop: @escaping @Sendable () async -> Void) {
        stops.withLock { $0.append(stop) }
    }

    private func stopAll() async {
        let all = stops.withLock { stops in
            defer { stops.removeAll() }
            return stops
        }
        for stop in all.reversed() { await stop() }
    }
}
