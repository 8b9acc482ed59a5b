import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fresh directory under the system's temporary directory, removed by ``remove()``.
public final class TemporaryDirectory: Sendable {
    /// Its absolute path.
    public let path: String

    /// Creates `<parent>/<prefix>XXXXXX` (in the system's temporary directory unless told
    /// otherwise), readable by everyone (servers drop privileges).
    public init(prefix: String, in parent: String = NSTemporaryDirectory()) throws {
        var template = Array((parent + "/" + prefix + "XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw TransportError("mkdtemp failed: errno \(errno)") }
        path = String(cString: created)
        chmod(path, 0o755)
    }

    /// Writes `contents` to `name` inside the directory; returns its path.
    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> String {
        let file = path + "/" + name
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Creates the directory `name` inside this one (and its parents); returns its path.
    @discardableResult
    public func makeDirectory(_ name: String) throws -> String {
        let directory = path + "/" + name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        return directory
    }

    /// Copies the executable at `source` to `name` inside this directory, mode 0755; returns its path.
    ///
    /// Copied with descriptors opened `O_CLOEXEC`: a program started meanwhile by another test
    /// must not inherit the file open for writing, or executing it fails with `ETXTBSY`.
    public func copyExecutable(_ source: String, to name: String) throws -> String {
        let target = path + "/" + name
        unlink(target)
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw TransportError("cannot open \(source): errno \(errno)") }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        guard output >= 0 else { throw TransportError("cannot create \(target): errno \(errno)") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = Glibc.read(input, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw TransportError("cannot read \(source): errno \(errno)") }
            if count == 0 { break }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { Glibc.write(output, $0.baseAddress! + written, count - written) }
                if result < 0, errno == EINTR { continue }
                guard result > 0 else { throw TransportError("cannot write \(target): errno \(errno)") }
                written += result
            }
        }
        fchmod(output, 0o755)
        return target
    }

    /// The contents of `name` inside the directory, or "" when it does not exist.
    public func read(_ name: String) -> String {
        FileManager.default.contents(atPath: path + "/" + name).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Deletes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Programs the end-to-end tests need from the system.
public enum RequiredTool {
    /// The path of `name` in the usual system directories; throws, naming the fix, when it is missing.
    public static func locate(_ name: String) throws -> String {
        let directories = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
            return directory + "/" + name
        }
        throw TransportError("\(name) is not installed; run scripts/install-deps (needs apt) and retry")
    }

    /// Whether this process runs as root (servers then need explicit users).
    static var isRoot: Bool { geteuid() == 0 }
}

/// A web server the tests started: its processes, its directory and the port it listens on.
public final class WebServerInstance: Sendable {
    /// A short name, e.g. `apache+mod_cgid`.
    public let name: String
    /// The port it listens on, on 127.0.0.1.
    public let port: Int
    /// Its configuration, logs and copies of the programs it runs.
    public let directory: TemporaryDirectory
    let processes: [RunningProcess]

    init(name: String, port: Int, directory: TemporaryDirectory, processes: [RunningProcess]) {
        self.name = name
        self.port = port
        self.directory = directory
        self.processes = processes
    }

    /// The application mounted at `/cgi-bin/<program>` over plain HTTP.
    public func transport(program: String = "hello") -> HTTPTransport {
        HTTPTransport(name: name, port: port, mountPoint: "/cgi-bin/" + program)
    }

    /// The same application at `/secure/<program>`, where the server sets `HTTPS=on`.
    public func secureTransport(program: String = "hello") -> HTTPTransport {
        HTTPTransport(name: name + " (HTTPS=on)", port: port, mountPoint: "/secure/" + program)
    }

    /// The server's error log (where CGI standard error ends up): `error.log` in its directory,
    /// where every configuration here puts it.
    public var errorLog: String { directory.read("error.log") }

    /// Stops every process (by PID, last started first) and deletes the directory.
    public func stop() async {
        for process in processes.reversed() { await process.stop() }
        directory.remove()
    }

    /// Starts the server with `start`, runs `body`, and stops the server whatever happens.
    public static func with<T>(
        _ start: () async throws -> WebServerInstance,
        _ body: (WebServerInstance) async throws -> T
    ) async throws -> T {
        try await withStarted(start, stop: { await $0.stop() }, body)
    }

    /// The start-up every web server here shares: makes a temporary directory and picks a free
    /// port, lets `configure` write the configuration there (starting any helper processes) and
    /// say which server to start, starts it (output in `stdout.log`), and waits until the port
    /// accepts connections. On any failure it stops what it started and removes the directory.
    static func start(
        name: String,
        directoryPrefix: String,
        timeout: Duration,
        configure: (_ directory: TemporaryDirectory, _ port: Int) async throws -> ServerLaunch
    ) async throws -> WebServerInstance {
        let directory = try TemporaryDirectory(prefix: directoryPrefix)
        do {
            let port = try PortAllocator.freePort()
            let launch = try await configure(directory, port)
            let process: RunningProcess
            do {
                process = try ProcessRunner.start(
                    launch.executable,
                    arguments: launch.arguments,
                    logFile: directory.path + "/stdout.log"
                )
            } catch {
                for helper in launch.helpers.reversed() { await helper.stop() }
                throw error
            }
            let server = WebServerInstance(
                name: name,
                port: port,
                directory: directory,
                processes: launch.helpers + [process]
            )
            do {
                try await server.waitUntilReady(timeout: timeout)
            } catch {
                await server.stop()
                throw error
            }
            return server
        } catch {
            directory.remove()
            throw error
        }
    }

    /// Waits until the port accepts connections, failing early (with the log) when a process died.
    private func waitUntilReady(timeout: Duration) async throws {
        let ready = try await poll(timeout: timeout) {
            if let dead = processes.first(where: { !$0.isRunning }) {
                throw TransportError("\(dead.executable) exited during start-up.\n\(dead.logTail)\n\(errorLog)")
            }
            return PortAllocator.isListening(port: port)
        }
        guard ready else {
            throw TransportError("nothing listens on 127.0.0.1:\(port) after \(timeout).\n\(errorLog)")
        }
    }
}

/// The server process a web server's configuration step asks ``WebServerInstance`` to start.
struct ServerLaunch {
    /// The program.
    var executable: String
    /// Its arguments.
    var arguments: [String]
    /// Processes already started that the server needs (fcgiwrap); stopped after it.
    var helpers: [RunningProcess] = []

    /// Apache in the foreground with `httpd.conf` in `prefix` as its ServerRoot.
    static func apache(_ executable: String, prefix: String) -> ServerLaunch {
        ServerLaunch(executable: executable, arguments: ["-d", prefix, "-f", prefix + "/httpd.conf", "-DFOREGROUND"])
    }

    /// nginx with `prefix` as its prefix, `nginx.conf` there, and its early errors in `error.log`.
    static func nginx(_ executable: String, prefix: String, helpers: [RunningProcess] = []) -> ServerLaunch {
        ServerLaunch(
            executable: executable,
            arguments: ["-p", prefix + "/", "-c", prefix + "/nginx.conf", "-e", prefix + "/error.log"],
            helpers: helpers
        )
    }
}

/// Apache httpd running CGI programs with mod_cgid, from a generated configuration.
public enum ApacheCGI {
    /// Starts Apache (mpm_event + mod_cgid) in a temporary ServerRoot on a free loopback port,
    /// serving each of `programs` (copied there) at `/cgi-bin/<name>` and at `/secure/<name>`
    /// (with `SetEnv HTTPS on`).
    public static func start(programs: [String], timeout: Duration = .seconds(20)) async throws -> WebServerInstance {
        let apache = try RequiredTool.locate("apache2")
        let modules = "/usr/lib/apache2/modules"
        guard FileManager.default.fileExists(atPath: modules + "/mod_cgid.so") else {
            throw TransportError("\(modules)/mod_cgid.so is missing; run scripts/install-deps")
        }
        return try await WebServerInstance.start(
            name: "apache+mod_cgid",
            directoryPrefix: "swift-gateway-apache-",
            timeout: timeout
        ) { directory, port in
            try directory.makeDirectory("cgi-bin")
            try directory.makeDirectory("htdocs")
            try directory.write("mime.types", "")
            var aliases = ""
            for program in programs {
                let name = (program as NSString).lastPathComponent
                let copy = try directory.copyExecutable(program, to: "cgi-bin/" + name)
                aliases += "ScriptAlias /cgi-bin/\(name) \(copy)\nScriptAlias /secure/\(name) \(copy)\n"
            }
            // Some modules are built into Debian's apache2 (unixd, log_config); load the others.
            let loads = [
                "mpm_event", "authz_core", "unixd", "log_config", "mime", "alias", "env", "setenvif", "cgid",
            ]
            .map { "<IfModule !\($0)_module>\n    LoadModule \($0)_module \(modules)/mod_\($0).so\n</IfModule>" }
            .joined(separator: "\n")
            let prefix = directory.path
            try directory.write(
                "httpd.conf",
                ServerConfiguration.apache(
                    prefix: prefix,
                    port: port,
                    modules: loads,
                    threads: 16,
                    """
                    ScriptSock "\(prefix)/cgid.sock"

                    \(aliases)
                    <Directory "\(prefix)/cgi-bin">
                        Require all granted
                    </Directory>
                    <Location "/secure">
                        SetEnv HTTPS on
                    </Location>
                    """
                )
            )
            return .apache(apache, prefix: prefix)
        }
    }
}

/// nginx in front of fcgiwrap (nginx speaks FastCGI to fcgiwrap, which runs the CGI program).
public enum NginxFcgiwrap {
    /// The FastCGI parameters nginx sends to fcgiwrap for a program at `scriptFilename` mounted
    /// at the location whose regular expression captured `$fastcgi_script_name`; as in
    /// `nginx/cgi-fcgiwrap.conf`.
    public static func parameters(scriptFilename: String, https: String) -> String {
        """
        fastcgi_param SCRIPT_FILENAME   \(scriptFilename);
        fastcgi_param SCRIPT_NAME       $fastcgi_script_name;
        fastcgi_param PATH_INFO         $fastcgi_path_info;
        fastcgi_param QUERY_STRING      $query_string;
        fastcgi_param REQUEST_METHOD    $request_method;
        fastcgi_param CONTENT_TYPE      $content_type;
        fastcgi_param CONTENT_LENGTH    $content_length;
        fastcgi_param REQUEST_URI       $request_uri;
        fastcgi_param DOCUMENT_URI      $document_uri;
        fastcgi_param DOCUMENT_ROOT     $document_root;
        fastcgi_param SERVER_PROTOCOL   $server_protocol;
        fastcgi_param REQUEST_SCHEME    $scheme;
        fastcgi_param HTTPS             \(https);
        fastcgi_param GATEWAY_INTERFACE CGI/1.1;
        fastcgi_param SERVER_SOFTWARE   nginx/$nginx_version;
        fastcgi_param REMOTE_ADDR       $remote_addr;
        fastcgi_param REMOTE_PORT       $remote_port;
        fastcgi_param SERVER_ADDR       $server_addr;
        fastcgi_param SERVER_PORT       $server_port;
        fastcgi_param SERVER_NAME       $server_name;
        """
    }

    /// Starts fcgiwrap on a Unix socket and nginx (one worker) on a free loopback port, in a
    /// temporary prefix, serving each of `programs` (copied there) at `/cgi-bin/<name>` and
    /// at `/secure/<name>` (with `fastcgi_param HTTPS on`).
    public static func start(programs: [String], timeout: Duration = .seconds(20)) async throws -> WebServerInstance {
        let nginx = try RequiredTool.locate("nginx")
        let fcgiwrap = try RequiredTool.locate("fcgiwrap")
        return try await WebServerInstance.start(
            name: "nginx+fcgiwrap",
            directoryPrefix: "swift-gateway-nginx-",
            timeout: timeout
        ) { directory, port in
            let prefix = directory.path
            for name in ["cgi-bin", "htdocs", "tmp", "logs"] { try directory.makeDirectory(name) }
            var locations = ""
            for program in programs {
                let name = (program as NSString).lastPathComponent
                let copy = try directory.copyExecutable(program, to: "cgi-bin/" + name)
                for (mount, https) in [("cgi-bin", "$https if_not_empty"), ("secure", "on")] {
                    locations += """
                            location ~ ^/\(mount)/\(name)(/.*)?$ {
                                fastcgi_split_path_info ^(/\(mount)/\(name))(/.*)?$;
                                fastcgi_pass unix:\(prefix)/fcgiwrap.sock;
                        \(parameters(scriptFilename: copy, https: https).split(separator: "\n").map { "            " + $0 }.joined(separator: "\n"))
                            }

                        """
                }
            }
            try directory.write(
                "nginx.conf",
                ServerConfiguration.nginx(
                    prefix: prefix,
                    port: port,
                    workerConnections: 256,
                    clientMaxBodySize: "64m",
                    serverContext: locations
                )
            )
            let wrapper = try ProcessRunner.start(
                fcgiwrap,
                arguments: ["-f", "-c", "2", "-s", "unix:\(prefix)/fcgiwrap.sock"],
                logFile: prefix + "/fcgiwrap.log"
            )
            let socketReady = await poll(timeout: timeout) {
                PortAllocator.isListening(unixSocket: prefix + "/fcgiwrap.sock") || !wrapper.isRunning
            }
            guard socketReady, wrapper.isRunning else {
                let failure = TransportError("fcgiwrap does not accept connections.\n\(wrapper.logTail)")
                await wrapper.stop()
                throw failure
            }
            return .nginx(nginx, prefix: prefix, helpers: [wrapper])
        }
    }
}

/// The skeletons of the configurations the tests' web servers run with: one server process,
/// on 127.0.0.1:`port`, everything (pid file, logs, temporary files) inside `prefix`, and
/// their error log in `prefix/error.log`, where ``WebServerInstance/errorLog`` reads it.
enum ServerConfiguration {
    /// An `httpd.conf` for Apache (mpm_event, one process of `threads` threads) loading
    /// `modules`, serving `prefix/htdocs`, followed by `rest`.
    static func apache(prefix: String, port: Int, modules: String, threads: Int, _ rest: String) -> String {
        // As root, the workers run as nobody in the group the application's socket is given to.
        let user = ApacheFastCGI.workerGroup.map { "User nobody\nGroup \($0)\n" } ?? ""
        return """
            ServerRoot "\(prefix)"
            ServerName 127.0.0.1
            Listen 127.0.0.1:\(port)
            PidFile "\(prefix)/httpd.pid"
            DefaultRuntimeDir "\(prefix)"
            ErrorLog "\(prefix)/error.log"
            LogLevel warn
            \(user)
            \(modules)

            StartServers 1
            ServerLimit 1
            ThreadLimit \(threads)
            ThreadsPerChild \(threads)
            MaxRequestWorkers \(threads)
            MinSpareThreads 1
            MaxSpareThreads \(threads)
            Timeout 60
            TypesConfig "\(prefix)/mime.types"
            DocumentRoot "\(prefix)/htdocs"
            LogFormat "%h \\"%r\\" %>s %b" common
            CustomLog "\(prefix)/access.log" common

            \(rest)

            """
    }

    /// An `nginx.conf` (one worker, `daemon off`) with `httpContext` in its `http` block and
    /// `serverContext` in its one `server` block, whose root is `prefix/htdocs`.
    static func nginx(
        prefix: String,
        port: Int,
        workerConnections: Int,
        clientMaxBodySize: String,
        httpContext: String = "",
        serverContext: String
    ) -> String {
        """
        \(RequiredTool.isRoot ? "user root root;" : "")
        worker_processes 1;
        daemon off;
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/error.log warn;
        events { worker_connections \(workerConnections); }
        http {
            access_log off;
            client_max_body_size \(clientMaxBodySize);
            client_body_temp_path \(prefix)/tmp/client_body;
            fastcgi_temp_path \(prefix)/tmp/fastcgi;
            proxy_temp_path \(prefix)/tmp/proxy;
            uwsgi_temp_path \(prefix)/tmp/uwsgi;
            scgi_temp_path \(prefix)/tmp/scgi;
            fastcgi_read_timeout 60s;
        \(httpContext)
            server {
                listen 127.0.0.1:\(port);
                server_name localhost;
                root \(prefix)/htdocs;
        \(serverContext)
            }
        }

        """
    }
}
