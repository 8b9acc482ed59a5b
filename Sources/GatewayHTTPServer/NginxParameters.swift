import Gateway
import NIOCore
import NIOHTTP1

/// The CGI variables nginx would send for a request, built from the HTTP request itself.
///
/// It follows Debian's `/etc/nginx/fastcgi_params` (the one `nginx/fastcgi-unix.conf`
/// includes) and that snippet's two overrides (`SCRIPT_NAME ""`, `PATH_INFO $uri`), in the
/// order nginx sends them, then one `HTTP_*` variable per header, so an application sees the
/// same environ here as behind nginx. Left out on purpose: `DOCUMENT_ROOT` (no document
/// root here), `HTTPS` (this server speaks plain HTTP, and nginx sends it only when set),
/// and `HTTP_PROXY` (httpoxy: a client's `Proxy:` header must never look like a setting).
enum NginxParameters {
    /// What the server software calls itself in `SERVER_SOFTWARE`.
    static let serverSoftware = "swift-gateway-http"

    /// The request's target, split and normalised as nginx does; nil when nginx would answer 400.
    struct Target {
        /// `$request_uri`: the target as sent (for an absolute-form target, from its path on).
        var requestURI: [UInt8]
        /// `$uri`: the path, percent-decoded, slashes merged, dot segments resolved.
        var uri: [UInt8]
        /// `$args`: what follows the first `?`, still encoded.
        var query: [UInt8]
        /// The host of an absolute-form target (`GET http://host/path`), lower-cased.
        var host: [UInt8]?
    }

    /// Parses a request target; nil for what nginx rejects with 400.
    static func parseTarget(_ raw: String) -> Target? {
        let bytes = Array(raw.utf8)
        var pathStart = 0
        var host: [UInt8]?
        if bytes.first != UInt8(ascii: "/") {
            // Absolute form: scheme "://" authority path.
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")),
                bytes[colon...].starts(with: Array("://".utf8))
            else { return nil }
            let authorityStart = colon + 3
            let authorityEnd =
                bytes[authorityStart...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }
                ?? bytes.count
            host = hostName(bytes[authorityStart..<authorityEnd])
            pathStart = authorityEnd
        }
        let rest = bytes[pathStart...]
        let queryMark = rest.firstIndex(of: UInt8(ascii: "?"))
        let rawPath = Array(rest[..<(queryMark ?? rest.endIndex)])
        let query = queryMark.map { Array(rest[($0 + 1)...]) } ?? []
        guard let uri = normalisePath(rawPath.isEmpty ? [UInt8(ascii: "/")] : rawPath) else { return nil }
        // For an absolute-form target nginx's `$request_uri` is its path and query only.
        let requestURI = rest.first == UInt8(ascii: "/") ? Array(rest) : [UInt8(ascii: "/")] + rest
        return Target(requestURI: requestURI, uri: uri, query: query, host: host)
    }

    /// nginx's `$uri`: percent-escapes decoded (a bad escape or `%00` is an error), then `//`
    /// merged and `.`/`..` resolved (a `..` above the root is an error).
    static func normalisePath(_ raw: [UInt8]) -> [UInt8]? {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(raw.count)
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < raw.count, let high = hexValue(raw[index + 1]), let low = hexValue(raw[index + 2])
                else { return nil }
                let value = high << 4 | low
                guard value != 0 else { return nil }
                decoded.append(value)
                index += 3
            } else {
                decoded.append(byte)
                index += 1
            }
        }
        guard decoded.first == UInt8(ascii: "/") else { return nil }
        var segments: [ArraySlice<UInt8>] = []
        var endsWithSlash = decoded.last == UInt8(ascii: "/")
        for segment in decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if segment.elementsEqual([UInt8(ascii: ".")]) {
                endsWithSlash = true
            } else if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                guard !segments.isEmpty else { return nil }
                segments.removeLast()
                endsWithSlash = true
            } else {
                segments.append(segment)
                endsWithSlash = false
            }
        }
        if decoded.last == UInt8(ascii: "/") { endsWithSlash = true }
        var path: [UInt8] = [UInt8(ascii: "/")]
        for (position, segment) in segments.enumerated() {
            if position > 0 { path.append(UInt8(ascii: "/")) }
            path.append(contentsOf: segment)
        }
        if endsWithSlash, !segments.isEmpty { path.append(UInt8(ascii: "/")) }
        return path
    }

    /// The CGI variables for `head`, arriving from `remote` at `local`.
    static func variables(
        head: HTTPRequestHead,
        target: Target,
        remote: SocketAddress?,
        local: SocketAddress?,
        serverName: String
    ) -> CGIVariables {
        var builder = Builder()
        let headers = head.headers
        builder.add("QUERY_STRING", target.query)
        builder.add("REQUEST_METHOD", head.method.rawValue)
        builder.add("CONTENT_TYPE", headers.first(name: "content-type") ?? "")
        builder.add("CONTENT_LENGTH", headers.first(name: "content-length") ?? "")
        builder.add("REQUEST_URI", target.requestURI)
        builder.add("DOCUMENT_URI", target.uri)
        builder.add("SERVER_PROTOCOL", "HTTP/\(head.version.major).\(head.version.minor)")
        builder.add("REQUEST_SCHEME", "http")
        builder.add("GATEWAY_INTERFACE", "CGI/1.1")
        builder.add("SERVER_SOFTWARE", serverSoftware)
        builder.add("REMOTE_ADDR", remote?.ipAddress ?? "")
        builder.add("REMOTE_PORT", remote?.port.map(String.init) ?? "")
        builder.add("REMOTE_USER", basicAuthUser(headers.first(name: "authorization")) ?? [])
        builder.add("SERVER_ADDR", local?.ipAddress ?? "")
        builder.add("SERVER_PORT", local?.port.map(String.init) ?? "")
        builder.add("SERVER_NAME", serverName)
        builder.add("REDIRECT_STATUS", "200")
        // Debian's fastcgi_params: HTTP_HOST is `$host` (no port, lower-cased), not the raw header.
        builder.add(
            "HTTP_HOST",
            target.host ?? headers.first(name: "host").map { hostName(Array($0.utf8)[...]) } ?? Array(serverName.utf8)
        )
        // nginx/fastcgi-unix.conf: the app is mounted at the root.
        builder.add("SCRIPT_NAME", "")
        builder.add("PATH_INFO", target.uri)
        for (name, value) in combinedHeaders(headers) {
            builder.add(name, value)
        }
        return builder.variables
    }

    /// `HTTP_*` name and value for each header nginx passes on: names made of letters, digits
    /// and `-` only (nginx ignores the rest), `Host` (sent as `$host` above) and `Proxy`
    /// (httpoxy) left out, repeated headers joined with `, ` (`; ` for `Cookie`) as nginx
    /// 1.23 and later do.
    static func combinedHeaders(_ headers: HTTPHeaders) -> [(String, String)] {
        var result: [(String, String)] = []
        var positions: [String: Int] = [:]
        for (name, value) in headers {
            guard let variable = variableName(forHeader: name) else { continue }
            if variable == "HTTP_HOST" || variable == "HTTP_PROXY" { continue }
            if let position = positions[variable] {
                result[position].1 += (variable == "HTTP_COOKIE" ? "; " : ", ") + value
            } else {
                positions[variable] = result.count
                result.append((variable, value))
            }
        }
        return result
    }

    /// `HTTP_` plus the name upper-cased with `-` turned into `_`; nil for a name nginx ignores.
    static func variableName(forHeader name: String) -> String? {
        var variable = "HTTP_"
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): variable.unicodeScalars.append(Unicode.Scalar(byte - 32))
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                variable.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "-"): variable.append("_")
            default: return nil
            }
        }
        return name.isEmpty ? nil : variable
    }

    /// The host part of a `Host` value or authority, lower-cased, without port or user info.
    private static func hostName(_ authority: ArraySlice<UInt8>) -> [UInt8] {
        var host = authority
        if let at = host.lastIndex(of: UInt8(ascii: "@")) { host = host[(at + 1)...] }
        if host.first == UInt8(ascii: "[") {
            if let close = host.firstIndex(of: UInt8(ascii: "]")) { host = host[...close] }
        } else if let colon = host.firstIndex(of: UInt8(ascii: ":")) {
            host = host[..<colon]
        }
        if host.last == UInt8(ascii: ".") { host = host.dropLast() }
        return host.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
    }

    /// nginx's `$remote_user`: the user name of `Authorization: Basic`, else nothing.
    private static func basicAuthUser(_ authorization: String?) -> [UInt8]? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic", let decoded = Base64.decode(parts[1].utf8)
        else { return nil }
        guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return Array(decoded[..<colon])
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Lays variables out in one byte buffer, as `CGIVariables` keeps them: values are kept as
    /// bytes, so a path that is not UTF-8 reaches the app exactly as it would through nginx.
    private struct Builder {
        var storage: [UInt8] = []
        var layout: [UInt32] = []

        init() {
            storage.reserveCapacity(1024)
            layout.reserveCapacity(30 * 4)
        }

        mutating func add(_ name: String, _ value: String) {
            add(name, Array(value.utf8))
        }

        mutating func add(_ name: String, _ value: [UInt8]) {
            layout.append(UInt32(storage.count))
            layout.append(UInt32(name.utf8.count))
            storage.append(contentsOf: name.utf8)
            layout.append(UInt32(storage.count))
            layout.append(UInt32(value.count))
            storage.append(contentsOf: value)
        }

        var variables: CGIVariables { CGIVariables(storage: storage, layout: layout) }
    }
}
