/// A web application: takes the environ of one request and returns its response.
///
/// This is the whole interface between servers and applications (the WSGI callable).
/// It is `Sendable` because a FastCGI server calls it for many requests at once.
/// `respond(to:)` is `nonisolated(nonsending)`: it runs on the caller's executor, so a CGI
/// process never starts the global executor's threads it does not need.
public protocol GatewayApplication: Sendable {
    /// Answers one request. A thrown error becomes a `500` (logged to `environ.errors`,
    /// never shown to the client) and the server keeps serving.
    nonisolated(nonsending) func respond(to environ: Environ) async throws -> GatewayResponse
}

/// An application made from a closure, for the common case where a type would be ceremony.
public struct ClosureApplication: GatewayApplication {
    /// The closure's type: the same contract as ``GatewayApplication/respond(to:)``.
    public typealias Handler = nonisolated(nonsending) @Sendable (Environ) async throws -> GatewayResponse

    private let handler: Handler

    /// Wraps `handler`.
    public init(_ handler: @escaping Handler) {
        self.handler = handler
    }

    /// Calls the closure: the closure is the application.
    nonisolated(nonsending) public func respond(to environ: Environ) async throws -> GatewayResponse {
        try await handler(environ)
    }
}
