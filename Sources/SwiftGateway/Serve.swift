@_exported import Gateway
import CGI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `application` the way this process was started, then exits.
///
/// Like libfcgi's `FCGX_IsCGI`: a listening socket on fd 0 (spawn-fcgi, mod_fcgid,
/// `cgi-fcgi -start`) or `--socket`/`--port` flags mean FastCGI; otherwise one CGI request.
/// One binary therefore deploys both ways.
public func serve(_ application: some Application) async -> Never {
    let status = await CGIServer.run(application)
    exit(status)
}

/// Runs the application made from `handler`; see ``serve(_:)-(Application)``.
public func serve(_ handler: @escaping ClosureApplication.Handler) async -> Never {
    await serve(ClosureApplication(handler))
}
