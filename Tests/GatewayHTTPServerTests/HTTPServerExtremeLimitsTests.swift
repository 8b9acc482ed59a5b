import Gateway
import GatewayHTTPServer
import GatewayTestHarness
import Testing

@Suite("Development HTTP server: extreme limits", .serialized, .timeLimit(.minutes(1)))
struct HTTPServerExtremeLimitsTests {
    @Test("no limit value traps: the largest and the smallest still serve or refuse")
    func extremeLimits() async throws {
        var largest = HTTPServerLimits()
        largest.maxHeaderBytes = .max
        largest.maxBodyBytes = .max
        largest.bodyBufferBytes = .max
        largest.requestTimeoutSeconds = .max
        largest.maxConnections = .max
        try await withHTTPServer(ClosureApplication { _ in .text("ok") }, limits: largest) { port in
            let response = try await HTTPClient.send(port: port, method: "POST", target: "/", body: [1, 2, 3])
            #expect(response.status == 200)
        }
        var smallest = HTTPServerLimits()
        smallest.maxHeaderBytes = .min
        smallest.maxBodyBytes = .min
        smallest.bodyBufferBytes = .min
        smallest.requestTimeoutSeconds = .min
        try await withHTTPServer(ClosureApplication { _ in .text("ok") }, limits: smallest) { port in
            let response = try await HTTPClient.send(port: port, method: "GET", target: "/")
            #expect(response.status == 431)
        }
    }
}
