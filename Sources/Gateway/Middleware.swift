/// Code that wraps an application, e.g. logging, authentication or validation.
///
/// A middleware sees each request before the application and each response after it, and
/// a wrapped application is itself an ``Application``, so chains compose like WSGI middleware:
/// `app.wrapped(in: Inner()).wrapped(in: Outer())`.
public protocol Middleware: Sendable {
    /// Answers one request, usually by calling `next` and adjusting its environ or response.
    nonisolated(nonsending) func respond(to environ: Environ, next: some Application) async throws -> Response
}

/// An application wrapped in a middleware: what ``Application/wrapped(in:)`` returns.
public struct MiddlewareApplication<Wrapper: Middleware, Wrapped: Application>: Application {
    /// The middleware that runs first.
    public let middleware: Wrapper
    /// The application it calls.
    public let application: Wrapped

    /// Wraps `application` in `middleware`.
    public init(_ middleware: Wrapper, wrapping application: Wrapped) {
        self.middleware = middleware
        self.application = application
    }

    nonisolated(nonsending) public func respond(to environ: Environ) async throws -> Response {
        try await middleware.respond(to: environ, next: application)
    }
}

extension Application {
    /// This application behind `middleware`; the last one wrapped runs first.
    public func wrapped<Wrapper: Middleware>(in middleware: Wrapper) -> MiddlewareApplication<Wrapper, Self> {
        MiddlewareApplication(middleware, wrapping: self)
    }
}
