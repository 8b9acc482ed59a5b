public import HTTPTypes

/// A complete response as the client received it, whatever the transport: status, header
/// fields and body, in swift-http-types' types, so assertions read the same as in
/// HummingbirdTesting or Vapor's XCTVapor.
///
/// Through nginx the headers are nginx's (it may add `Server`, `Date`, `Connection` and
/// `Transfer-Encoding`, and drop `Content-Length` for a chunked body); the body is always
/// de-chunked.
public struct GatewayTestResponse: Sendable {
    /// The response's status (code and reason phrase).
    public var status: HTTPResponse.Status
    /// The response's header fields, in the order they arrived (CGI's `Status` is in
    /// ``status``, not here).
    public var headers: HTTPFields
    /// The response body's bytes, complete.
    public var body: [UInt8]

    /// The body decoded as UTF-8 (invalid sequences replaced), for text responses.
    public var bodyString: String { String(decoding: body, as: UTF8.self) }

    init(status: HTTPResponse.Status, headers: HTTPFields, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
