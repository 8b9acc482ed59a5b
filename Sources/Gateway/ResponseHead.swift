public import HTTPTypes

/// The head of a CGI response (RFC 3875 §6): a `Status:` line, the headers, a blank line.
///
/// Shared by every server so that hop-by-hop stripping and `Content-Length` ownership
/// follow one rule everywhere.
public enum ResponseHead {
    /// Headers the web server owns; an application's values for them are dropped.
    public static let hopByHopHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "status",
    ]

    /// The statuses a CGI response may carry: final ones only (a 1xx cannot be sent through
    /// CGI or FastCGI), and none a web server would take for a broken upstream.
    public static let validStatusCodes = 200...599

    /// Why an application's status and body length cannot make a response head, or nil when
    /// they can. ``ResponseDriver`` checks this before the head goes out and answers `500`
    /// instead, so that no application value can trap the server or reach the web server as
    /// a malformed head.
    public static func problem(status: HTTPResponse.Status, contentLength: Int?) -> InvalidResponse? {
        if !validStatusCodes.contains(status.code) {
            return InvalidResponse(
                "status \(status.code) is not a final HTTP status (\(validStatusCodes.lowerBound)…\(validStatusCodes.upperBound))"
            )
        }
        if let contentLength, contentLength < 0 {
            return InvalidResponse("the body's content length \(contentLength) is negative")
        }
        return nil
    }

    /// Encodes `status` and `headers` as CGI response header lines, adding `Content-Length:
    /// contentLength` when the application did not set one and the status allows a body.
    /// A negative `contentLength` is left out (``problem(status:contentLength:)`` reports it).
    public static func encode(status: HTTPResponse.Status, headers: HTTPFields, contentLength: Int?) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + headers.count * 32)
        bytes.append(contentsOf: "Status: ".utf8)
        appendDecimal(status.code, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: (status.reasonPhrase.isEmpty ? standardReason(status.code) : status.reasonPhrase).utf8)
        bytes.append(contentsOf: "\r\n".utf8)
        var hasContentLength = false
        for field in headers {
            let name = field.name.canonicalName
            if hopByHopHeaders.contains(name) { continue }
            if field.name == .contentLength { hasContentLength = true }
            bytes.append(contentsOf: field.name.rawName.utf8)
            bytes.append(contentsOf: ": ".utf8)
            bytes.append(contentsOf: field.value.utf8)
            bytes.append(contentsOf: "\r\n".utf8)
        }
        if let contentLength, contentLength >= 0, !hasContentLength, allowsBody(status) {
            bytes.append(contentsOf: "Content-Length: ".utf8)
            appendDecimal(contentLength, to: &bytes)
            bytes.append(contentsOf: "\r\n".utf8)
        }
        bytes.append(contentsOf: "\r\n".utf8)
        return bytes
    }

    /// Whether a response with `status` may carry a body (not 1xx, 204 or 304).
    public static func allowsBody(_ status: HTTPResponse.Status) -> Bool {
        !(status.code < 200 || status.code == 204 || status.code == 304)
    }

    /// The RFC 9110 reason phrase of a status code, for statuses built from a bare number.
    public static func standardReason(_ code: Int) -> String {
        switch code {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 451: "Unavailable For Legal Reasons"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 511: "Network Authentication Required"
        default: "Status \(code)"
        }
    }

    /// Appends a non-negative `value` in decimal; a negative one (never passed) appends `0`.
    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        guard value >= 0 else { return bytes.append(UInt8(ascii: "0")) }
        if value >= 10 { appendDecimal(value / 10, to: &bytes) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}

/// An application's response that cannot be sent as a CGI response head (a negative content
/// length, a status outside ``ResponseHead/validStatusCodes``): answered as a `500` and
/// logged, like an error the application threw.
public struct InvalidResponse: Error, CustomStringConvertible, Sendable {
    /// What is wrong with the response, for the error log.
    public let description: String

    init(_ description: String) {
        self.description = "invalid response: " + description
    }
}
