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

    /// Encodes `status` and `headers` as CGI response header lines, adding `Content-Length:
    /// contentLength` when the application did not set one and the status allows a body.
    public static func encode(status: HTTPResponse.Status, headers: HTTPFields, contentLength: Int?) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + headers.count * 32)
        bytes.append(contentsOf: "Status: ".utf8)
        appendDecimal(status.code, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: status.reasonPhrase.utf8)
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
        if let contentLength, !hasContentLength, allowsBody(status) {
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

    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        if value >= 10 { appendDecimal(value / 10, to: &bytes) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}
