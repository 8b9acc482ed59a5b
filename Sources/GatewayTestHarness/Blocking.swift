import Foundation

/// Runs blocking work (process I/O, sockets) on its own thread, so it never occupies one of
/// the few threads of Swift's cooperative pool.
public func onDedicatedThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try work() })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// Polls `condition` every `interval` until it is true or `timeout` passed; returns whether it became true.
public func poll(
    timeout: Duration,
    interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

/// Runs `body` with what `start` returned, then `stop`s it whether `body` returned or threw:
/// the one shape of every "start a server, use it, never leave it running" helper.
public func withStarted<Resource, T>(
    _ start: () async throws -> Resource,
    stop: (Resource) async -> Void,
    _ body: (Resource) async throws -> T
) async throws -> T {
    let resource = try await start()
    do {
        let result = try await body(resource)
        await stop(resource)
        return result
    } catch {
        await stop(resource)
        throw error
    }
}
