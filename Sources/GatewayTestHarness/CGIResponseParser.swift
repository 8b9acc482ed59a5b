/// Parses the output of a CGI program or an HTTP/1.1 response into a ``TestResponse``.
public enum ResponseParser {
    /// Parses CGI output (RFC 3875 §6): header lines ending in CRLF or LF, a blank line, the
    /// body. The status comes from the `Status` header; without one it is 302 when there is a
    /// `Location` header, else 200.
    public static func parseCGI(_ output: [UInt8]) throws -> TestResponse {
        guard let (lines, bodyStart) = splitHead(output) else {
            throw TransportError("CGI output has no blank line after its headers: \(preview(output))")
        }
        var headers: [(name: String, value: String)] = []
        var status: Int?
        var reason = ""
        for line in lines {
            let (name, value) = try field(line)
            if name.lowercased() == "status" {
                let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard let code = Int(parts[0]) else { throw TransportError("bad CGI Status line: \(line)") }
                status = code
                reason = parts.count > 1 ? String(parts[1]) : ""
            } else {
                headers.append((name, value))
            }
        }
        if status == nil { status = headers.contains { $0.name.lowercased() == "location" } ? 302 : 200 }
        return TestResponse(status: status!, reasonPhrase: reason, headers: headers, body: Array(output[bodyStart...]))
    }

    /// Parses a complete HTTP/1.1 response read until the connection closed: the status line,
    /// headers, and a body framed by `Transfer-Encoding: chunked`, `Content-Length` or the close.
    public static func parseHTTP(_ input: [UInt8]) throws -> TestResponse {
        guard let (lines, bodyStart) = splitHead(input), let statusLine = lines.first else {
            throw TransportError("HTTP response has no complete head: \(preview(input))")
        }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) else {
            throw TransportError("bad HTTP status line: \(statusLine)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() { headers.append(try field(line)) }
        var response = TestResponse(
            status: code,
            reasonPhrase: parts.count > 2 ? String(parts[2]) : "",
            headers: headers
        )
        let rest = input[bodyStart...]
        if response[header: "Transfer-Encoding"]?.lowercased().contains("chunked") == true {
            response.body = try dechunk(rest)
        } else if let length = response[header: "Content-Length"].flatMap({ Int($0) }) {
            guard rest.count >= length else {
                throw TransportError("HTTP body has \(rest.count) bytes, Content-Length says \(length)")
            }
            response.body = Array(rest.prefix(length))
        } else {
            response.body = Array(rest)
        }
        return response
    }

    static func dechunk(_ bytes: ArraySlice<UInt8>) throws -> [UInt8] {
        var body: [UInt8] = []
        var index = bytes.startIndex
        while true {
            guard let lineEnd = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else {
                throw TransportError("chunked body ends without its last chunk")
            }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self)
                .prefix { $0 != ";" && $0 != "\r" }
            guard let size = Int(sizeText.trimmingSpaces, radix: 16) else {
                throw TransportError("bad chunk size line: \(sizeText)")
            }
            index = lineEnd + 1
            if size == 0 { return body }
            guard bytes.endIndex - index >= size else { throw TransportError("chunk cut short") }
            body.append(contentsOf: bytes[index..<index + size])
            index += size
            while index < bytes.endIndex, bytes[index] == UInt8(ascii: "\r") || bytes[index] == UInt8(ascii: "\n") {
                index += 1
            }
        }
    }

    /// The head's lines (without line ends) and where the body starts.
    static func splitHead(_ bytes: [UInt8]) -> ([String], Int)? {
        var lines: [String] = []
        var start = 0
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                var end = index
                if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end == start { return (lines, index + 1) }
                lines.append(String(decoding: bytes[start..<end], as: UTF8.self))
                start = index + 1
            }
            index += 1
        }
        return nil
    }

    static func field(_ line: String) throws -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: ":") else { throw TransportError("header line without a colon: \(line)") }
        return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces)
    }

    static func preview(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
