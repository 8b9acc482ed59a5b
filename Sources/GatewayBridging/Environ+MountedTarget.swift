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
        let encodedPath = Self.percentEncodedPath(pathInfo.isEmpty ? "/" : pathInfo)
        let query = queryString
        return query.isEmpty ? encodedPath : encodedPath + "?" + query
    }

    /// ``Environ/request`` with ``mountedTarget`` as its path: the head a bridged framework sees.
    package var mountedRequest: HTTPRequest {
        var request = self.request
        request.path = mountedTarget
        return request
    }
}
