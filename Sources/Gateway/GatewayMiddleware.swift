/// Code that wraps an application, e.g. logging, authentication or validation.
///
/// A middleware sees each request before the application and each response after it, and
/// a wrapped application is itself an ``GatewayApplication``, so chains compose like WSGI middleware:
/// `app.wrapped(in: Inner()).wrapped(in: Outer())`.
public protocol GatewayMiddleware: Sendable {
    /// Answers one request, usually by calling `next` and adjusting its environ or response.
    nonisolated(nonsending) func respond(
        to environ: Environ,
        next: some GatewayApplication
    ) async throws -> GatewayResponse
}

/// An application wrapped in a middleware: what ``GatewayApplication/wrapped(in:)`` returns.
public struct GatewayMiddlewareApplication<Wrapper: GatewayMiddleware, Wrapped: GatewayApplication>: GatewayApplication
{
    /// The middleware that runs first.
    public let middleware: Wrapper
    /// The application it calls.
    public let application: Wrapped

    /// Wraps `application` in `middleware`.
    public init(_ middleware: Wrapper, wrapping application: Wrapped) {
        self.middleware = middleware
        self.application = application
    }

    /// Runs the middleware with the wrapped application as its `next`.
    nonisolated(nonsending) public func respond(to environ: Environ) async throws -> GatewayResponse {
        try await middleware.respond(to: environ, next: application)
    }
}

extension GatewayApplication {
    /// This application behind `middleware`; the last one wrapped runs first.
    public func wrapped<Wrapper: GatewayMiddleware>(
        in middleware: Wrapper
    ) -> GatewayMiddlewareApplication<Wrapper, Self> {
        GatewayMiddlewareApplication(middleware, wrapping: self)
    }
}
