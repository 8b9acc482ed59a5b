internal import GatewayTestHarness
public import HTTPTypes

/// Sends requests to the application under test over the transport ``Gateway/GatewayApplication/test(_:_:)``
/// set up, and returns complete responses. Valid only inside that call's body.
public struct GatewayTestClient: Sendable {
    /// The transport's exchange of one request for its response.
    private let exchange: @Sendable (TestRequest) async throws -> TestResponse

    /// Which transport this client sends over, for messages in test output.
    public let transport: GatewayTestTransport

    init(transport: GatewayTestTransport, exchange: @escaping @Sendable (TestRequest) async throws -> TestResponse) {
        self.transport = transport
        self.exchange = exchange
    }

    /// Sends one request and waits for its complete response: at most 60 s over a socket or a
    /// process, as long as the application takes in process.
    ///
    /// `uri` is the path and optional `?query` below where the application is mounted (it
    /// becomes `PATH_INFO` and `QUERY_STRING`, still percent-encoded in the query); `Host` and,
    /// for a body, `Content-Length` are added unless `headers` has them.
    public func execute(
        uri: String,
        method: HTTPRequest.Method = .get,
        headers: HTTPFields = [:],
        body: [UInt8] = []
    ) async throws -> GatewayTestResponse {
        guard uri.hasPrefix("/"), !uri.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw GatewayTestError(
                "a request's uri must start with / and hold no spaces or control characters: \(uri.debugDescription)"
            )
        }
        let request = TestRequest(
            method.rawValue,
            uri,
            headers: headers.map { (name: $0.name.rawName, value: $0.value) },
            body: body
        )
        return try Self.convert(await exchange(request), from: transport)
    }

    /// Sends one request whose body is `body` in UTF-8: the same as the byte-body `execute`.
    public func execute(
        uri: String,
        method: HTTPRequest.Method = .get,
        headers: HTTPFields = [:],
        body: String
    ) async throws -> GatewayTestResponse {
        try await execute(uri: uri, method: method, headers: headers, body: Array(body.utf8))
    }

    /// The harness's response in swift-http-types' types; throws on what they cannot hold.
    private static func convert(
        _ response: TestResponse,
        from transport: GatewayTestTransport
    ) throws
        -> GatewayTestResponse
    {
        guard (100...999).contains(response.status) else {
            throw GatewayTestError("\(transport) answered with the invalid status \(response.status)")
        }
        var fields = HTTPFields()
        for (name, value) in response.headers {
            guard let fieldName = HTTPField.Name(name) else {
                throw GatewayTestError("\(transport) answered with an invalid header name \(name.debugDescription)")
            }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        return GatewayTestResponse(
            status: HTTPResponse.Status(code: response.status, reasonPhrase: response.reasonPhrase),
            headers: fields,
            body: response.body
        )
    }
}
