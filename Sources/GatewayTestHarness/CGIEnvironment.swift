/// Builds CGI meta-variables for a ``TestRequest`` exactly as Apache's mod_cgid sends them:
/// the same names, values and order (headers first as `HTTP_*`, `CONTENT_TYPE`/`CONTENT_LENGTH`
/// where their headers appeared, then the server's variables), `PATH_INFO` only when
/// non-empty, and no `HTTP_CONTENT_*` duplicates.
public struct CGIEnvironment: Sendable {
    /// Where the application is mounted (`SCRIPT_NAME`), e.g. `/cgi-bin/hello`; may be empty.
    public var scriptName: String
    /// The program's path on disk (`SCRIPT_FILENAME`).
    public var scriptFilename: String
    /// `SERVER_NAME`; also the `Host` header when the request has none.
    public var serverName = "localhost"
    /// `SERVER_ADDR`.
    public var serverAddress = "127.0.0.1"
    /// `SERVER_PORT`.
    public var serverPort = 80
    /// `REMOTE_ADDR`.
    public var remoteAddress = "127.0.0.1"
    /// `REMOTE_PORT`.
    public var remotePort = 41952
    /// `DOCUMENT_ROOT`.
    public var documentRoot = "/var/www/html"
    /// `REQUEST_SCHEME`: `http` or `https`.
    public var scheme = "http"
    /// `SERVER_SOFTWARE`.
    public var serverSoftware = "Apache/2.4.62 (Debian)"
    /// Extra variables appended at the end (e.g. `HTTPS=on` from `SetEnv`).
    public var extra: [(name: String, value: String)] = []

    /// An Apache-like environment for a program mounted at `scriptName`.
    public init(scriptName: String = "/cgi-bin/hello", scriptFilename: String = "/usr/lib/cgi-bin/hello") {
        self.scriptName = scriptName
        self.scriptFilename = scriptFilename
    }

    /// The variables for `request`, in mod_cgid's order.
    public func variables(for request: TestRequest) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        var hasHost = false
        var hasContentLength = false
        for (name, value) in request.headers {
            let upper = String(name.uppercased().map { $0 == "-" ? "_" : $0 })
            switch upper {
            case "CONTENT_TYPE": pairs.append(("CONTENT_TYPE", value))
            case "CONTENT_LENGTH":
                hasContentLength = true
                pairs.append(("CONTENT_LENGTH", value))
            default:
                if upper == "HOST" { hasHost = true }
                pairs.append(("HTTP_" + upper, value))
            }
        }
        if !hasHost {
            pairs.insert(("HTTP_HOST", serverPort == 80 ? serverName : "\(serverName):\(serverPort)"), at: 0)
        }
        if !hasContentLength, !request.body.isEmpty { pairs.append(("CONTENT_LENGTH", String(request.body.count))) }
        let contextPrefix = scriptName.lastIndex(of: "/").map { String(scriptName[...$0]) } ?? ""
        pairs += [
            ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            ("SERVER_SIGNATURE", ""),
            ("SERVER_SOFTWARE", serverSoftware),
            ("SERVER_NAME", serverName),
            ("SERVER_ADDR", serverAddress),
            ("SERVER_PORT", String(serverPort)),
            ("REMOTE_ADDR", remoteAddress),
            ("DOCUMENT_ROOT", documentRoot),
            ("REQUEST_SCHEME", scheme),
            ("CONTEXT_PREFIX", contextPrefix),
            ("CONTEXT_DOCUMENT_ROOT", documentRoot),
            ("SERVER_ADMIN", "[no address given]"),
            ("SCRIPT_FILENAME", scriptFilename),
            ("REMOTE_PORT", String(remotePort)),
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_METHOD", request.method),
            ("QUERY_STRING", request.query),
            ("REQUEST_URI", scriptName + request.target),
            ("SCRIPT_NAME", scriptName),
        ]
        let pathInfo = PercentDecoder.decode(request.path)
        if !pathInfo.isEmpty {
            pairs.append(("PATH_INFO", pathInfo))
            pairs.append(("PATH_TRANSLATED", documentRoot + pathInfo))
        }
        pairs += extra
        return pairs
    }
}

/// Percent-decoding as web servers apply it to `PATH_INFO`.
enum PercentDecoder {
    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
                let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
