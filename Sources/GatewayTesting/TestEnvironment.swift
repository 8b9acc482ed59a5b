internal import GatewayTestHarness

/// The CGI variables the in-process and FastCGI transports give the application: what
/// Apache's mod_cgid sends (see the harness's `CGIEnvironment`), mounted at the root.
enum TestEnvironment {
    /// Mounted at the root (`SCRIPT_NAME` empty), like nginx with `nginx/fastcgi-unix.conf`.
    static let rootMount = CGIEnvironment(scriptName: "", scriptFilename: "")
}
