import Foundation
import GatewayTestHarness
import Testing

/// The checks every web server running `hello` as CGI must pass; each takes the transports
/// of one running server, so the same bodies run through Apache and through nginx + fcgiwrap.
enum HelloThroughServer {
    static var hello: String {
        get throws { try BuiltProducts.executable(named: "hello") }
    }

    static func environ(_ transport: some GatewayTransport, _ request: TestRequest) async throws -> [String: String] {
        let response = try await transport.perform(request)
        #expect(response.status == 200, "\(transport.name): \(response.text)")
        #expect(response[header: "Content-Type"] == "application/json")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String])
    }

    static func helloAndNotFound(_ transport: some GatewayTransport) async throws {
        for target in ["/", ""] {
            let response = try await transport.perform(TestRequest("GET", target))
            #expect(response.status == 200, "\(transport.name) \(target) \(response.text)")
            #expect(response[header: "Content-Type"] == "text/plain; charset=utf-8")
            #expect(response.text == "Hello, world!")
        }
        let missing = try await transport.perform(TestRequest("GET", "/nowhere"))
        #expect(missing.status == 404)
        #expect(missing.text == "Not Found\n")
    }

    static func queryAndHeaders(_ transport: some GatewayTransport) async throws {
        let json = try await environ(
            transport,
            TestRequest("GET", "/environ?a=1&b=%20x&c", headers: [("X-Custom-Thing", "custom value")])
        )
        #expect(json["REQUEST_METHOD"] == "GET")
        #expect(json["QUERY_STRING"] == "a=1&b=%20x&c")
        #expect(json["HTTP_X_CUSTOM_THING"] == "custom value")
        #expect(json["SCRIPT_NAME"] == "/cgi-bin/hello")
        #expect(json["PATH_INFO"] == "/environ")
        #expect(json["GATEWAY_INTERFACE"] == "CGI/1.1")
        #expect(json["SERVER_PROTOCOL"] == "HTTP/1.1")
        #expect(json["REQUEST_URI"] == "/cgi-bin/hello/environ?a=1&b=%20x&c")
        #expect(json["url_scheme"] == "http")
        #expect(json["HTTP_CONTENT_LENGTH"] == nil)
        #expect(json["HTTP_CONTENT_TYPE"] == nil)
        let post = try await environ(
            transport,
            TestRequest("POST", "/environ", headers: [("Content-Type", "text/plain")], body: Array("ignored".utf8))
        )
        #expect(post["REQUEST_METHOD"] == "POST")
        #expect(post["CONTENT_TYPE"] == "text/plain")
        #expect(post["CONTENT_LENGTH"] == "7")
    }

    static func https(_ transport: some GatewayTransport) async throws {
        let json = try await environ(transport, TestRequest("GET", "/environ"))
        #expect(json["HTTPS"] == "on")
        #expect(json["url_scheme"] == "https")
    }

    static func errorIs500(_ transport: some GatewayTransport, log: () -> String) async throws {
        let response = try await transport.perform(TestRequest("GET", "/error"))
        #expect(response.status == 500)
        #expect(response.text == "Internal Server Error\n")
        let logged = await poll(timeout: .seconds(5)) {
            log().contains("swift-gateway: application error while answering, GET /cgi-bin/hello/error")
        }
        #expect(logged, "the error log has no line for the error:\n\(log())")
    }

    static func echo10MiB(_ transport: some GatewayTransport) async throws {
        var generator = SystemRandomNumberGenerator()
        var body = [UInt8](repeating: 0, count: 10 << 20)
        for index in stride(from: 0, to: body.count, by: 8) {
            withUnsafeBytes(of: generator.next()) { random in
                for offset in 0..<8 { body[index + offset] = random[offset] }
            }
        }
        let response = try await transport.perform(
            TestRequest("POST", "/echo", headers: [("Content-Type", "application/octet-stream")], body: body)
        )
        #expect(response.status == 200, "\(transport.name): \(response.text.prefix(500))")
        #expect(response[header: "Content-Type"] == "application/octet-stream")
        #expect(response.body.count == body.count)
        // Compared by hand: #expect on two 10 MiB arrays would compute their difference.
        let firstDifference = zip(response.body, body).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "the echoed body differs from byte \(firstDifference ?? 0) on")
    }
}
