import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
