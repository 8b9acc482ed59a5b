import SwiftGateway

struct Greeter: Application {
    func respond(to environ: Environ) async throws -> Response {
        switch environ.pathInfo {
        case "/":
            return .text("Hello from \(environ.serverName ?? "swift-gateway")!")
        case "/echo":
            let body = try await environ.input.collect(upTo: 1 << 20)
            let headers: HTTPFields = [.contentType: environ.contentType ?? "application/octet-stream"]
            return Response(headers: headers, body: ResponseBody(bytes: body))
        default:
            return .status(.notFound)
        }
    }
}

await serve(Greeter())
