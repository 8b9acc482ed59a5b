import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
