import FastCGI
import NIOCore

/// One request as a web server would send it: BEGIN_REQUEST, the PARAMS stream, the body as
/// STDIN records (any record size, any padding) and the empty STDIN record.
public struct FastCGITestRequest: Sendable {
    /// The request id (1…65535).
    public var id: UInt16
    /// The role in BEGIN_REQUEST.
    public var role: Role
    /// `FCGI_KEEP_CONN`.
    public var keepConnection: Bool
    /// The CGI params, in order.
    public var params: [(String, String)]
    /// The request body.
    public var stdin: [UInt8]
    /// Content bytes per STDIN record (1…65535).
    public var stdinRecordSize: Int
    /// Padding after each STDIN record's content.
    public var stdinPadding: UInt8

    /// A request with exactly these params and body.
    public init(
        id: UInt16 = 1,
        role: Role = .responder,
        keepConnection: Bool = false,
        params: [(String, String)],
        stdin: [UInt8] = [],
        stdinRecordSize: Int = 65535,
        stdinPadding: UInt8 = 0
    ) {
        self.id = id
        self.role = role
        self.keepConnection = keepConnection
        self.params = params
        self.stdin = stdin
        self.stdinRecordSize = stdinRecordSize
        self.stdinPadding = stdinPadding
    }

    /// The params PROBE.md's tests send for `method` on `target` (a path with an optional
    /// `?query`): SCRIPT_NAME empty, PATH_INFO and DOCUMENT_URI the path, REQUEST_URI the
    /// target, plus CONTENT_LENGTH when there is a body.
    public static func cgiParams(
        method: String,
        target: String,
        bodyLength: Int? = nil,
        extra: [(String, String)] = []
    ) -> [(String, String)] {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        let query = parts.count > 1 ? String(parts[1]) : ""
        var params: [(String, String)] = [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_SOFTWARE", "swift-gateway-tests"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REQUEST_METHOD", method),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", path),
            ("DOCUMENT_URI", path),
            ("REQUEST_URI", target),
            ("QUERY_STRING", query),
        ]
        if let bodyLength {
            params.append(("CONTENT_LENGTH", String(bodyLength)))
            params.append(("CONTENT_TYPE", "application/octet-stream"))
        }
        return params + extra
    }

    /// `GET target`.
    public static func get(
        _ target: String,
        id: UInt16 = 1,
        keepConnection: Bool = false,
        extra: [(String, String)] = []
    ) -> FastCGITestRequest {
        FastCGITestRequest(
            id: id,
            keepConnection: keepConnection,
            params: cgiParams(method: "GET", target: target, extra: extra)
        )
    }

    /// `POST target` with `body` (and a matching CONTENT_LENGTH).
    public static func post(
        _ target: String,
        body: [UInt8],
        id: UInt16 = 1,
        keepConnection: Bool = false,
        extra: [(String, String)] = []
    ) -> FastCGITestRequest {
        FastCGITestRequest(
            id: id,
            keepConnection: keepConnection,
            params: cgiParams(method: "POST", target: target, bodyLength: body.count, extra: extra),
            stdin: body
        )
    }

    /// BEGIN_REQUEST and the whole PARAMS stream, without any STDIN.
    public func encodedHead() -> ByteBuffer {
        var buffer = ByteBuffer()
        RequestEncoder.writeBeginRequest(requestID: id, role: role, keepConnection: keepConnection, into: &buffer)
        RequestEncoder.writeParams(params, requestID: id, into: &buffer)
        return buffer
    }

    /// The whole request on the wire.
    public func encoded() -> ByteBuffer {
        var buffer = encodedHead()
        var offset = 0
        while offset < stdin.count {
            let end = min(offset + stdinRecordSize, stdin.count)
            RequestEncoder.writeRecord(
                type: RecordType.stdin.rawValue,
                requestID: id,
                content: stdin[offset..<end],
                paddingLength: stdinPadding,
                into: &buffer
            )
            offset = end
        }
        RequestEncoder.writeStdinEnd(requestID: id, into: &buffer)
        return buffer
    }
}

/// Everything the server sent for one request, and its CGI response parsed.
public struct FastCGITestResponse: Sendable {
    /// The request id.
    public let requestID: UInt16
    /// The STDOUT stream's bytes, concatenated.
    public private(set) var stdout: [UInt8] = []
    /// The STDERR stream's bytes, concatenated.
    public private(set) var stderr: [UInt8] = []
    /// Sizes of the non-empty STDOUT records, in order.
    public private(set) var stdoutRecordSizes: [Int] = []
    /// Whether the empty STDOUT record arrived (before END_REQUEST).
    public private(set) var stdoutEnded = false
    /// Records that arrived for this id after the empty STDOUT record but before END_REQUEST
    /// (STDOUT data there is a protocol violation).
    public private(set) var stdoutAfterEnd = 0
    /// END_REQUEST's appStatus.
    public private(set) var appStatus: UInt32 = 0
    /// END_REQUEST's protocolStatus.
    public private(set) var protocolStatus: ProtocolStatus = .requestComplete

    init(requestID: UInt16) {
        self.requestID = requestID
    }

    /// Adds an event of this request; returns true when it was END_REQUEST.
    mutating func add(_ event: ResponseEvent) -> Bool {
        switch event {
        case .stdout(_, let bytes):
            if stdoutEnded { stdoutAfterEnd += 1 }
            bytes.withUnsafeReadableBytes { stdout.append(contentsOf: $0) }
            stdoutRecordSizes.append(bytes.readableBytes)
        case .stdoutEnd:
            stdoutEnded = true
        case .stderr(_, let bytes):
            bytes.withUnsafeReadableBytes { stderr.append(contentsOf: $0) }
        case .stderrEnd:
            break
        case .endRequest(_, let appStatus, let protocolStatus):
            self.appStatus = appStatus
            self.protocolStatus = protocolStatus
            cgi = CGIResponse(parsing: stdout)
            return true
        case .getValuesResult, .unknownType:
            break
        }
        return false
    }

    /// The CGI response on STDOUT: its `Status:` (200 without one), headers and body;
    /// parsed when END_REQUEST arrives.
    public private(set) var cgi = CGIResponse(parsing: [])

    /// The HTTP status (from the `Status:` line, or 200).
    public var status: Int { cgi.status }
    /// The response body.
    public var body: [UInt8] { cgi.body }
    /// The response body as UTF-8.
    public var bodyString: String { String(decoding: cgi.body, as: UTF8.self) }
    /// The first header called `name` (case-insensitive).
    public func header(_ name: String) -> String? { cgi.header(name) }

    /// True for a normally completed request: empty STDOUT seen, END_REQUEST with
    /// `FCGI_REQUEST_COMPLETE`, nothing on STDOUT after its end.
    public var isCompleteAndWellFormed: Bool {
        stdoutEnded && stdoutAfterEnd == 0 && protocolStatus == .requestComplete
    }
}

/// A CGI response (RFC 3875 §6): header lines ending in CRLF or LF, a blank line, the body.
public struct CGIResponse: Sendable {
    /// The status code from `Status:`, 200 when there is none, 0 when the head is malformed.
    public var status: Int
    /// The header lines in order (including `Status`).
    public var headers: [(name: String, value: String)]
    /// The bytes after the blank line.
    public var body: [UInt8]
    /// True when a blank line ended the head.
    public var hasCompleteHead: Bool

    /// Parses `bytes`.
    public init(parsing bytes: [UInt8]) {
        var headers: [(String, String)] = []
        var index = 0
        var complete = false
        while index < bytes.count {
            guard let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            var lineEnd = newline
            if lineEnd > index, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            let line = bytes[index..<lineEnd]
            index = newline + 1
            if line.isEmpty {
                complete = true
                break
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces()
            headers.append((name, value))
        }
        self.headers = headers
        self.hasCompleteHead = complete
        self.body = complete ? Array(bytes[index...]) : []
        if !complete {
            self.status = 0
        } else if let status = headers.first(where: { $0.0.lowercased() == "status" })?.1 {
            self.status = Int(status.prefix(while: { $0.isNumber })) ?? 0
        } else {
            self.status = 200
        }
    }

    /// The first header called `name`, ignoring case.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        let scalars = unicodeScalars.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }
        return String(String.UnicodeScalarView(scalars.reversed()))
    }
}
