/// Turns the CGI response head the gateway produces (`Status: 200 OK`, headers, blank line)
/// into an HTTP/1.1 status line and headers, as nginx does with an application's FastCGI output.
struct HTTPResponseFraming {
    /// The status code from the `Status:` line.
    var status: Int
    /// The value of the application's `Content-Length`, when it sent one.
    var contentLength: Int?
    /// The head's bytes up to (not including) the framing headers and the blank line.
    var headBytes: [UInt8]

    /// Parses `cgiHead`, which `ResponseHead.encode` made (so it is well formed).
    init(cgiHead: [UInt8], version: (major: Int, minor: Int)) {
        var lines = cgiHead.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        lines.removeAll { $0.isEmpty }
        var status = 200
        var reason: ArraySlice<UInt8> = Array("OK".utf8)[...]
        var contentLength: Int?
        var head = Array("HTTP/\(version.major).\(version.minor) ".utf8)
        var fields: [UInt8] = []
        for line in lines {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            var value = line[(colon + 1)...]
            while value.first == UInt8(ascii: " ") { value = value.dropFirst() }
            if name == "status" {
                let digits = value.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
                status = Int(decimalDigits: String(decoding: digits, as: UTF8.self)) ?? 200
                reason = value.dropFirst(digits.count).drop { $0 == UInt8(ascii: " ") }
                continue
            }
            if name == "content-length" {
                contentLength = Int(decimalDigits: String(decoding: value, as: UTF8.self))
            }
            fields.append(contentsOf: line)
            fields.append(contentsOf: "\r\n".utf8)
        }
        head.append(contentsOf: String(status).utf8)
        head.append(UInt8(ascii: " "))
        head.append(contentsOf: reason)
        head.append(contentsOf: "\r\n".utf8)
        head.append(contentsOf: fields)
        self.status = status
        self.contentLength = contentLength
        self.headBytes = head
    }

    /// Whether a response with this status may carry a body (not 1xx, 204 or 304).
    var allowsBody: Bool { !(status < 200 || status == 204 || status == 304) }
}
