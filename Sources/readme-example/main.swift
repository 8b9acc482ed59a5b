import SwiftGateway

struct Greeter: GatewayApplication {
    func respond(to environ: Environ) async throws -> GatewayResponse {
        switch environ.pathInfo {
        case "/":
            return .text("Hello from \(environ.serverName ?? "swift-gateway")!")
        case "/echo":
            let body = try await environ.input.collect(upTo: 1 << 20)
            let headers: HTTPFields = [.contentType: environ.contentType ?? "application/octet-stream"]
            return GatewayResponse(headers: headers, body: GatewayResponseBody(bytes: body))
        default:
            return .status(.notFound)
        }
    }
}

await serve(Greeter())
