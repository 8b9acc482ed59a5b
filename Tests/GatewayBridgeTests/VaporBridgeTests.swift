#if Vapor
import Gateway
import GatewayTestHarness
import GatewayVapor
import Testing
import Vapor

@Suite("GatewayVapor in process", .serialized)
struct VaporBridgeTests {
    /// Runs `body` against a booted Vapor app with a few routes, mounted at `scriptName`.
    static func withApp(
        scriptName: String = "",
        _ body: (InProcessTransport<GatewayVapor>) async throws -> Void
    ) async throws {
        let app = try await Application.make(.testing)
        app.routes.defaultMaxBodySize = "1mb"
        app.get("users", ":id") { request in
            "\(try request.parameters.require("id")) \(request.url.path) \(request.remoteAddress?.port ?? 0)"
        }
        app.on(.POST, "count") { request in "\(request.body.data?.readableBytes ?? 0)" }
        app.get("chunks") { _ in
            Response(
                body: .init(asyncStream: { writer in
                    for index in 0..<3 { try await writer.writeBuffer(ByteBuffer(string: "chunk \(index)\n")) }
                    try await writer.write(.end)
                })
            )
        }
        app.get("legacy") { request in
            Response(
                body: .init(stream: { writer in
                    _ = writer.write(.buffer(ByteBuffer(string: "one "))).flatMap {
                        writer.write(.buffer(ByteBuffer(string: "two")))
                    }.flatMap { writer.write(.end) }
                })
            )
        }
        app.get("teapot") { _ -> String in throw Abort(.imATeapot) }
        do {
            try await app.asyncBoot()
            try await body(InProcessTransport(GatewayVapor(app), environment: CGIEnvironment(scriptName: scriptName)))
        } catch {
            try await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }

    @Test func routeParametersMountPointAndRemoteAddress() async throws {
        try await Self.withApp(scriptName: "/app") { app in
            let response = try await app.perform(TestRequest("GET", "/users/42"))
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == "42 /users/42 41952")
        }
    }

    @Test func bodiesUpToTheLimitAndA413Past() async throws {
        try await Self.withApp { app in
            let small = try await app.perform(TestRequest("POST", "/count", body: Array(repeating: 1, count: 1000)))
            #expect(String(decoding: small.body, as: UTF8.self) == "1000")
            let large = try await app.perform(TestRequest("POST", "/count", body: Array(repeating: 1, count: 2 << 20)))
            #expect(large.status == 413)
        }
    }

    @Test func streamingBodiesOfBothKindsStream() async throws {
        try await Self.withApp { app in
            let chunks = try await app.perform(TestRequest("GET", "/chunks"))
            #expect(String(decoding: chunks.body, as: UTF8.self) == "chunk 0\nchunk 1\nchunk 2\n")
            let legacy = try await app.perform(TestRequest("GET", "/legacy"))
            #expect(String(decoding: legacy.body, as: UTF8.self) == "one two")
        }
    }

    @Test func errorsBecomeVaporsResponses() async throws {
        try await Self.withApp { app in
            #expect(try await app.perform(TestRequest("GET", "/teapot")).status == 418)
            #expect(try await app.perform(TestRequest("GET", "/nothing")).status == 404)
        }
    }
}
#endif
