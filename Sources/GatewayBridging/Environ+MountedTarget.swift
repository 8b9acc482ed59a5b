package import Gateway
package import HTTPTypes

extension Environ {
    /// The request target as the mounted application sees it: ``Environ/requestTarget``
    /// without ``Environ/scriptName`` (percent-encoded path and query, always starting with `/`).
    ///
    /// HTTP frameworks route on the whole path, as if they owned the host. Behind a web server
    /// that mounts the application under a prefix (`SCRIPT_NAME` `/app`, or a CGI script's
    /// `/cgi-bin/example`), the framework's `/users/:id` must match `/app/users/7`, so the
    /// prefix is taken off, at a segment boundary only (`/app` is not the script of
    /// `/application`). When the target does not start with the script name as sent (the
    /// script name had characters the client percent-encoded), the path is rebuilt from
    /// ``Environ/pathInfo``.
    package var mountedTarget: String {
        let target = requestTarget
        let script = scriptName
        guard !script.isEmpty else { return target }
        if target.hasPrefix(script) {
            let rest = target.dropFirst(script.count)
            if rest.isEmpty { return "/" }
            if rest.hasPrefix("?") { return "/" + rest }
            if rest.hasPrefix("/") { return String(rest) }
        }
        let encodedPath = Self.percentEncodingPath(pathInfo.isEmpty ? "/" : pathInfo)
        let query = queryString
        return query.isEmpty ? encodedPath : encodedPath + "?" + query
    }

    /// ``Environ/request`` with ``mountedTarget`` as its path: the head a bridged framework sees.
    package var mountedRequest: HTTPRequest {
        var request = self.request
        request.path = mountedTarget
        return request
    }

    /// `path` with every byte outside RFC 3986's `pchar` and `/` percent-encoded.
    static func percentEncodingPath(_ path: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.utf8.count)
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "/"):
                bytes.append(byte)
            case _ where Array("-._~!$&'()*+,;=:@".utf8).contains(byte):
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
