#if OpenAPI
import Gateway
import GatewayOpenAPI
import GatewayTestHarness
import HTTPTypes
import OpenAPIRuntime
import Testing

@Suite("GatewayOpenAPITransport in process")
struct OpenAPITransportTests {
    /// A transport with the operations the tests call, mounted at `scriptName`.
    static func transport(scriptName: String = "") throws -> InProcessTransport<GatewayOpenAPITransport> {
        let transport = GatewayOpenAPITransport()
        try transport.register(
            { request, _, metadata in
                let parameters = metadata.pathParameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                return (
                    HTTPResponse(status: .ok), HTTPBody(parameters.joined(separator: ",") + " " + (request.path ?? ""))
                )
            },
            method: .get,
            path: "/users/{id}"
        )
        try transport.register(
            { _, _, metadata in (HTTPResponse(status: .ok), HTTPBody("file \(metadata.pathParameters["name"] ?? "")"))
            },
            method: .get,
            path: "/files/{name}.json"
        )
        try transport.register(
            { _, body, _ in
                var chunks = 0
                var bytes = 0
                if let body {
                    for try await chunk in body {
                        chunks += 1
                        bytes += chunk.count
                    }
                }
                let length = body.map { "\($0.length)" } ?? "no body"
                return (HTTPResponse(status: .created), HTTPBody("\(bytes) bytes, \(length)"))
            },
            method: .post,
            path: "/users"
        )
        return InProcessTransport(transport, environment: CGIEnvironment(scriptName: scriptName))
    }

    @Test func pathParametersArePercentEncodedSegments() async throws {
        let response = try await Self.transport().perform(TestRequest("GET", "/users/a%20b?x=1"))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "id=a%20b /users/a%20b?x=1")
    }

    @Test func parameterBetweenLiteralsInOneSegment() async throws {
        let response = try await Self.transport().perform(TestRequest("GET", "/files/report.json"))
        #expect(String(decoding: response.body, as: UTF8.self) == "file report")
        let wrongSuffix = try await Self.transport().perform(TestRequest("GET", "/files/report.xml"))
        #expect(wrongSuffix.status == 404)
    }

    @Test func mountPointIsTakenOffThePath() async throws {
        let response = try await Self.transport(scriptName: "/app").perform(TestRequest("GET", "/users/7"))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "id=7 /users/7")
    }

    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        let transport = try Self.transport()
        #expect(try await transport.perform(TestRequest("GET", "/nothing")).status == 404)
        #expect(try await transport.perform(TestRequest("GET", "/users/7/more")).status == 404)
        let wrongMethod = try await transport.perform(TestRequest("DELETE", "/users/7"))
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.headers.first { $0.name.lowercased() == "allow" }?.value == "GET")
    }

    @Test func requestBodyReachesTheHandlerWithItsLength() async throws {
        let response = try await Self.transport().perform(
            TestRequest("POST", "/users", body: Array(repeating: 7, count: 100_000))
        )
        #expect(response.status == 201)
        #expect(String(decoding: response.body, as: UTF8.self) == "100000 bytes, known(100000)")
    }

    @Test func invalidTemplateIsRefusedAtRegistration() throws {
        let transport = GatewayOpenAPITransport()
        #expect(throws: GatewayOpenAPITransport.InvalidPathTemplate.self) {
            try transport.register({ _, _, _ in (HTTPResponse(status: .ok), nil) }, method: .get, path: "/a/{b}{c}")
        }
    }
}
#endif
