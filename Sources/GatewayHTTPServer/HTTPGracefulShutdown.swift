/// Sent down each connection's pipeline when the server begins its graceful shutdown.
struct HTTPGracefulShutdown: Sendable {}
