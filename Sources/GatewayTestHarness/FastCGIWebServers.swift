import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The configuration snippets the repository ships for users (`nginx/*.conf`, `apache/*.conf`),
/// loaded as the end-to-end tests use them: unchanged except for the socket directory.
public enum ShippedConfig {
    /// The directory every shipped snippet puts its sockets in; tests replace it with their own.
    public static let socketDirectory = "/run/swift-gateway/"

    /// The repository's root directory (found from this source file's path).
    public static func repositoryRoot(filePath: String = #filePath) -> String {
        var url = URL(fileURLWithPath: filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }

    /// The snippet at `relativePath` (e.g. `nginx/fastcgi-unix.conf`) with its socket directory
    /// replaced by `socketDirectory` and any other `replacements` applied.
    public static func load(
        _ relativePath: String,
        socketDirectory: String,
        replacements: [(String, String)] = []
    ) throws -> String {
        let path = repositoryRoot() + "/" + relativePath
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TransportError("cannot read the shipped configuration \(path)")
        }
        var text = String(decoding: data, as: UTF8.self)
        guard text.contains(Self.socketDirectory) || !replacements.isEmpty else {
            throw TransportError("\(relativePath) no longer mentions \(Self.socketDirectory): update the tests")
        }
        text = text.replacingOccurrences(
            of: Self.socketDirectory,
            with: socketDirectory.hasSuffix("/") ? socketDirectory : socketDirectory + "/"
        )
        for (old, new) in replacements {
            guard text.contains(old) else { throw TransportError("\(relativePath) no longer contains \(old)") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    /// Splits an nginx snippet the way its comments tell users to: `upstream { … }` blocks go
    /// in the `http` context, everything else (the `location`s) in a `server`.
    public static func splitNginx(_ text: String) -> (http: String, server: String) {
        var http = ""
        var server = ""
        var depth = 0
        var inUpstream = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if !inUpstream, depth == 0, trimmed.hasPrefix("upstream ") { inUpstream = true }
            if !trimmed.hasPrefix("#") {
                for character in line {
                    if character == "{" { depth += 1 }
                    if character == "}" { depth -= 1 }
                }
            }
            if inUpstream {
                http += line + "\n"
                if depth == 0 { inUpstream = false }
            } else {
                server += line + "\n"
            }
        }
        return (http, server)
    }
}

/// nginx speaking FastCGI to an application the tests started, from a generated nginx.conf.
public enum NginxFastCGI {
    /// Starts nginx (one worker, `daemon off`) in a temporary prefix on a free loopback port,
    /// with `httpContext` in its `http` block and `serverContext` in its one `server` block.
    /// `include fastcgi_params;` works: the system's file is copied next to nginx.conf.
    public static func start(
        name: String,
        httpContext: String = "",
        serverContext: String,
        timeout: Duration = .seconds(20)
    ) async throws -> WebServerInstance {
        let nginx = try RequiredTool.locate("nginx")
        return try await WebServerInstance.start(
            name: name,
            directoryPrefix: "swift-gateway-nginx-fcgi-",
            timeout: timeout
        ) { directory, port in
            for name in ["htdocs", "tmp", "logs"] { try directory.makeDirectory(name) }
            let systemParams = "/etc/nginx/fastcgi_params"
            guard let params = FileManager.default.contents(atPath: systemParams) else {
                throw TransportError("\(systemParams) is missing; install nginx with scripts/install-deps")
            }
            try directory.write("fastcgi_params", String(decoding: params, as: UTF8.self))
            try directory.write(
                "nginx.conf",
                ServerConfiguration.nginx(
                    prefix: directory.path,
                    port: port,
                    workerConnections: 1024,
                    clientMaxBodySize: "1g",
                    httpContext: httpContext,
                    serverContext: serverContext
                )
            )
            return .nginx(nginx, prefix: directory.path)
        }
    }
}

extension NginxFastCGI {
    /// Starts nginx with the shipped snippet at `relativePath` (e.g. `nginx/fastcgi-unix.conf`),
    /// its sockets in `socketDirectory` and `replacements` applied, split into the `http` and
    /// `server` contexts as its comments tell users to: the configuration users copy, tested.
    public static func start(
        shipped relativePath: String,
        socketDirectory: String,
        replacements: [(String, String)] = []
    ) async throws -> WebServerInstance {
        let split = ShippedConfig.splitNginx(
            try ShippedConfig.load(relativePath, socketDirectory: socketDirectory, replacements: replacements)
        )
        let file = (relativePath as NSString).lastPathComponent
        return try await start(name: "nginx (\(file))", httpContext: split.http, serverContext: split.server)
    }
}

/// Apache httpd (mpm_event) with mod_proxy_fcgi and mod_authnz_fcgi, from a generated httpd.conf.
public enum ApacheFastCGI {
    /// The group Apache's workers run as when the tests run as root (nil otherwise): give the
    /// application's socket to it (`--socket-group`), as `apache/proxy-fcgi.conf` tells users to.
    public static var workerGroup: String? { RequiredTool.isRoot ? "nogroup" : nil }

    /// Starts Apache in a temporary ServerRoot on a free loopback port with `serverContext`
    /// appended to its configuration. `htdocs` (the DocumentRoot) gets `files` (path → contents).
    public static func start(
        name: String,
        serverContext: String,
        files: [String: String] = [:],
        timeout: Duration = .seconds(20)
    ) async throws -> WebServerInstance {
        let apache = try RequiredTool.locate("apache2")
        let modules = "/usr/lib/apache2/modules"
        for module in ["mod_proxy.so", "mod_proxy_fcgi.so", "mod_authnz_fcgi.so"]
        where !FileManager.default.fileExists(atPath: modules + "/" + module) {
            throw TransportError("\(modules)/\(module) is missing; run scripts/install-deps apache2")
        }
        return try await WebServerInstance.start(
            name: name,
            directoryPrefix: "swift-gateway-apache-fcgi-",
            timeout: timeout
        ) { directory, port in
            let prefix = directory.path
            try directory.makeDirectory("htdocs")
            for (path, contents) in files { try directory.write("htdocs/" + path, contents) }
            try directory.write("mime.types", "text/plain txt\ntext/html html\n")
            let loads = [
                "mpm_event", "authn_core", "authz_core", "authz_user", "authz_host", "mime", "env", "dir", "proxy",
                "proxy_fcgi", "authnz_fcgi",
            ]
            .map { "LoadModule \($0)_module \(modules)/mod_\($0).so" }
            .joined(separator: "\n")
            try directory.write(
                "httpd.conf",
                ServerConfiguration.apache(
                    prefix: prefix,
                    port: port,
                    modules: loads,
                    threads: 64,
                    """
                    LimitRequestBody 0
                    <Directory "\(prefix)/htdocs">
                        Require all granted
                    </Directory>

                    \(serverContext)
                    """
                )
            )
            return .apache(apache, prefix: prefix)
        }
    }
}
