public import HTTPTypes

extension Environ {
    /// The request as swift-http-types describes it, for bridges and middleware written
    /// against `HTTPRequest` (Hummingbird, swift-openapi-runtime …); the body is ``input``.
    ///
    /// - `method`: ``method``; ``invalidMethod`` when `REQUEST_METHOD` is not an HTTP token.
    /// - `scheme`: ``urlScheme``.
    /// - `authority`: ``authority``.
    /// - `path`: ``requestTarget``: path and query, percent-encoded, as the client sent them.
    /// - `headerFields`: ``headers`` without `Host`, which became the authority (as the
    ///   HTTP/1 conversions of swift-nio-extras' NIOHTTPTypes do).
    public var request: HTTPRequest {
        var fields = headers
        fields[Self.hostField] = nil
        return HTTPRequest(
            method: method ?? Self.invalidMethod,
            scheme: urlScheme,
            authority: authority,
            path: requestTarget,
            headerFields: fields
        )
    }

    /// The method of ``request`` when `REQUEST_METHOD` is not an HTTP token: `HTTPRequest`
    /// cannot hold such a method (it traps), and any real method in its place (`GET`) would
    /// route the request as something it is not. This one matches no route; the raw value
    /// stays in ``requestMethod``. No web server sends such a method (they answer 400).
    public static let invalidMethod = HTTPRequest.Method("INVALID-METHOD")!

    /// `Host`, spelled out: swift-http-types marks `.host` unavailable to steer users to the authority.
    private static let hostField = HTTPField.Name("host")!

    /// The host the client asked for: `HTTP_HOST` when sent (with its port), else
    /// `SERVER_NAME`, followed by `:SERVER_PORT` unless that is the scheme's default (PEP 3333's
    /// URL reconstruction); nil when neither is sent.
    public var authority: String? {
        if let host = self["HTTP_HOST"], !host.isEmpty { return host }
        guard let name = serverName, !name.isEmpty else { return nil }
        guard let port = serverPort else { return name }
        let defaultPort = urlScheme == "https" ? 443 : 80
        return port == defaultPort ? name : "\(name):\(port)"
    }

    /// The request target: path and query, percent-encoded (`/a%20b?x=1`).
    ///
    /// `REQUEST_URI` as the client sent it (of an absolute-form target, `http://host/p?q`, the
    /// `/p?q`). Without `REQUEST_URI` (CGI/1.1 does not define it), rebuilt from ``path``,
    /// percent-encoded, and ``queryString``.
    public var requestTarget: String {
        if let uri = self["REQUEST_URI"], !uri.isEmpty, uri.hasPrefix("/") || uri == "*" || uri.contains("://") {
            return String(Self.originForm(uri))
        }
        let query = queryString
        let encodedPath = Self.percentEncodedPath(path)
        return query.isEmpty ? encodedPath : encodedPath + "?" + query
    }

    /// `path` with every byte outside RFC 3986's `pchar` and `/` percent-encoded (the bridges'
    /// mounted target uses it too).
    package static func percentEncodedPath(_ path: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.utf8.count)
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                bytes.append(byte)
            case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "!"),
                UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
                UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
                UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"):
                bytes.append(byte)
            default:
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
