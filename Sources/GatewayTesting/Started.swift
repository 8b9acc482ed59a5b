/// Start, use, always stop: what the `.fastCGI` and `.nginx` transports do with their servers.
enum Started {
    /// Runs `body` with what `start` returned, then `stop`s it whether `body` returned or threw.
    /// On the caller's executor, so a test's non-`Sendable` body never crosses isolation.
    nonisolated(nonsending) static func run<Resource, Value>(
        _ start: nonisolated(nonsending) () async throws -> Resource,
        stop: nonisolated(nonsending) (Resource) async -> Void,
        _ body: nonisolated(nonsending) (Resource) async throws -> Value
    ) async throws -> Value {
        let resource = try await start()
        do {
            let value = try await body(resource)
            await stop(resource)
            return value
        } catch {
            await stop(resource)
            throw error
        }
    }
}
