import Gateway

/// The application of PROBE.md: every endpoint the conformance tests and benchmarks call.
///
/// Routes on the end of SCRIPT_NAME + PATH_INFO, so it answers the same under any nginx
/// location prefix (`/bench/hello` is `/hello`).
struct ProbeApplication: GatewayApplication {
    private static let hello = GatewayResponse(
        status: .ok,
        headers: [.contentType: "text/plain"],
        body: GatewayResponseBody(string: "Hello, world!")
    )
    private static let bigChunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
    private static let maxStreamChunk = 16 << 20

    nonisolated(nonsending) func respond(to environ: Environ) async throws -> GatewayResponse {
        let path = environ.path
        guard let last = Self.component(endingBefore: path.endIndex, in: path) else { return .status(.notFound) }
        if Self.component(endingBefore: last.startIndex, in: path) == "status" { return status(code: last) }
        switch last {
        case "hello": return Self.hello
        case "echo": return try await echo(environ)
        case "environ": return try await environment(environ)
        case "stream": return stream(Query(environ.queryString))
        case "error": throw ProbeError.requested
        case "slow": return try await slow(Query(environ.queryString))
        case "big": return big(Query(environ.queryString))
        case "count": return try await count(environ)
        case "fail-after": return failAfter(Query(environ.queryString))
        default: return .status(.notFound)
        }
    }

    /// The last non-empty `/`-separated component of `path` before `end`, found on its UTF-8
    /// bytes (splitting the whole path into Characters cost a hello 7 % of its CPU).
    private static func component(endingBefore end: String.Index, in path: String) -> Substring? {
        let slash = UInt8(ascii: "/")
        let utf8 = path.utf8
        guard let last = utf8[..<end].lastIndex(where: { $0 != slash }) else { return nil }
        let start = utf8[..<last].lastIndex(of: slash).map { utf8.index(after: $0) } ?? utf8.startIndex
        // Both ends sit at a `/` or an end of the path: character boundaries.
        return path[start..<utf8.index(after: last)]
    }

    /// The body back, byte for byte. Read in full before answering, so a client that
    /// writes its whole body before reading the response never deadlocks.
    private func echo(_ environ: Environ) async throws -> GatewayResponse {
        var body: [UInt8] = []
        // Reserved up to 64 MiB: CONTENT_LENGTH is the client's word, not yet the body.
        if let length = environ.contentLength { body.reserveCapacity(min(length, 64 << 20)) }
        for try await chunk in environ.input {
            if body.isEmpty { body = chunk } else { body.append(contentsOf: chunk) }
        }
        return GatewayResponse(
            headers: [.contentType: "application/octet-stream"],
            body: GatewayResponseBody(bytes: body)
        )
    }

    private func environment(_ environ: Environ) async throws -> GatewayResponse {
        try await environ.input.discard()
        var json = JSONObjectWriter()
        // PROBE.md: every param exactly as received, the HTTP_CONTENT_* duplicates included.
        for (name, value) in environ.receivedVariables { json.add(name, value) }
        json.add("url_scheme", Self.urlScheme(environ))
        return GatewayResponse(
            headers: [.contentType: "application/json"],
            body: GatewayResponseBody(string: json.finish())
        )
    }

    /// PROBE.md's rule, word for word: `https` when `HTTPS` is `on` or `1` or `REQUEST_SCHEME`
    /// is `https` (any case), else `http`. ``Environ/urlScheme`` also honours `HTTPS=yes` and
    /// passes other schemes on; the probe's contract is narrower.
    static func urlScheme(_ environ: Environ) -> String {
        let https = environ["HTTPS"]?.lowercased()
        let scheme = environ["REQUEST_SCHEME"]?.lowercased()
        return https == "on" || https == "1" || scheme == "https" ? "https" : "http"
    }

    private func stream(_ query: Query) -> GatewayResponse {
        let count = query.integer("n") ?? 1
        let size = query.integer("size") ?? 1
        let delay = query.integer("delay_ms") ?? 0
        // A chunk is allocated whole, and the total is announced: bound both.
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        guard size <= Self.maxStreamChunk, !overflow else {
            return .text("size must be at most \(Self.maxStreamChunk) and n × size fit 64 bits\n", status: .badRequest)
        }
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        return GatewayResponse(
            headers: [.contentType: "application/octet-stream"],
            body: GatewayResponseBody(contentLength: total) { writer in
                for index in 0..<count {
                    if index > 0, delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                    try await writer.write(chunk)
                }
            }
        )
    }

    private func status(code: Substring) -> GatewayResponse {
        guard let value = Int(decimalDigits: String(code)), (200...599).contains(value) else {
            return .status(.notFound)
        }
        return .status(.init(code: value))
    }

    private func slow(_ query: Query) async throws -> GatewayResponse {
        try await Task.sleep(for: .milliseconds(query.integer("ms") ?? 0))
        return GatewayResponse(headers: [.contentType: "text/plain"], body: GatewayResponseBody(string: "done"))
    }

    private func big(_ query: Query) -> GatewayResponse {
        let total = query.integer("bytes") ?? 64 << 20
        let chunk = Self.bigChunk
        return GatewayResponse(
            headers: [.contentType: "application/octet-stream"],
            body: GatewayResponseBody(contentLength: total) { writer in
                var left = total
                while left > 0 {
                    let size = min(left, chunk.count)
                    try await writer.write(size == chunk.count ? chunk : Array(chunk[..<size]))
                    left -= size
                }
            }
        )
    }

    /// PROBE.md's `/fail-after`: B bytes of `x`, each write flushed, then the body throws, so
    /// the server must deliver a failure after the head. With `declared=1` the head promised
    /// 2B bytes (`Content-Length`), so the body also ends short of what was announced.
    private func failAfter(_ query: Query) -> GatewayResponse {
        let total = query.integer("bytes") ?? 1000
        let declared = query.integer("declared") == 1
        let (announced, overflow) = total.multipliedReportingOverflow(by: 2)
        guard !overflow else { return .text("bytes must be at most \(Int.max / 2)\n", status: .badRequest) }
        let chunk = Self.bigChunk
        return GatewayResponse(
            headers: [.contentType: "application/octet-stream"],
            body: GatewayResponseBody(contentLength: declared ? announced : nil) { writer in
                var left = total
                while left > 0 {
                    let size = min(left, chunk.count)
                    try await writer.write(size == chunk.count ? chunk : Array(chunk[..<size]))
                    left -= size
                }
                throw ProbeError.failedAfter(bytes: total)
            }
        )
    }

    private func count(_ environ: Environ) async throws -> GatewayResponse {
        let total = try await environ.input.discard()
        return GatewayResponse(headers: [.contentType: "text/plain"], body: GatewayResponseBody(string: String(total)))
    }
}

enum ProbeError: Error, CustomStringConvertible {
    case requested
    case failedAfter(bytes: Int)
    var description: String {
        switch self {
        case .requested: "GET /error: the probe's handler throws, as asked"
        case .failedAfter(let bytes): "GET /fail-after: the probe's body throws after \(bytes) bytes, as asked"
        }
    }
}

/// `application/x-www-form-urlencoded` query parameters (`+` is a space, `%XX` a byte); the
/// first of a repeated name counts.
struct Query {
    private var values: [String: String] = [:]

    init(_ queryString: String) {
        for pair in queryString.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentDecoding.decode(parts[0], plusIsSpace: true)
            if values[name] == nil {
                values[name] = parts.count > 1 ? PercentDecoding.decode(parts[1], plusIsSpace: true) : ""
            }
        }
    }

    /// A non-negative decimal parameter; nil when absent or malformed.
    func integer(_ name: String) -> Int? {
        values[name].flatMap { Int(decimalDigits: $0) }
    }
}

/// Writes a flat JSON object of strings; no Foundation needed.
struct JSONObjectWriter {
    private var text = "{"
    private var isFirst = true

    mutating func add(_ key: String, _ value: String) {
        if !isFirst { text += "," }
        isFirst = false
        append(key)
        text += ":"
        append(value)
    }

    mutating func finish() -> String {
        text + "}"
    }

    private mutating func append(_ string: String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
