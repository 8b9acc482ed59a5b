#if Vapor
import Vapor

/// The callback of a streaming Vapor `Response.Body`.
///
/// Vapor 4 keeps a body's storage internal: only its HTTP server can run a stream's callback.
/// The callback is read here by reflection (`Mirror`) on the storage's documented shape
/// (`storage: .stream(BodyStream(count:callback:))` or `.asyncStream(...)`), the one way to
/// stream such a body without Vapor's server; when the shape is not found (another Vapor
/// version), ``GatewayVapor`` falls back to Vapor's public `collect(on:)`.
enum VaporBodyStream: Sendable {
    case callback(@Sendable (any BodyStreamWriter) -> Void)
    case asyncCallback(@Sendable (any AsyncBodyStreamWriter) async throws -> Void)

    init?(_ body: Response.Body) {
        guard let storage = Mirror(reflecting: body).descendant("storage"),
            let stream = Mirror(reflecting: storage).children.first,
            let callback = Mirror(reflecting: stream.value).descendant("callback")
        else { return nil }
        switch stream.label {
        case "stream":
            guard let function = callback as? (any BodyStreamWriter) -> Void else { return nil }
            nonisolated(unsafe) let unchecked = function
            self = .callback { unchecked($0) }
        case "asyncStream":
            guard let function = callback as? (any AsyncBodyStreamWriter) async throws -> Void else { return nil }
            nonisolated(unsafe) let unchecked = function
            self = .asyncCallback { try await unchecked($0) }
        default:
            return nil
        }
    }
}
#endif
