internal import GatewayTestHarness

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// How a test's requests reach the application: the same test body runs unchanged over each,
/// so an app can be checked the way it will be deployed, not only in memory.
///
/// ```swift
/// @Test(arguments: [GatewayTestTransport.inProcess, .fastCGI, .cgi(product: "my-app"), .nginx])
/// func greets(transport: GatewayTestTransport) async throws {
///     try await MyApp().test(transport) { client in
///         let response = try await client.execute(uri: "/", method: .get)
///         #expect(response.status == .ok)
///     }
/// }
/// ```
public struct GatewayTestTransport: Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case inProcess
        case fastCGI
        case cgi(CGIProgram)
        case nginx
    }

    /// Which executable a `.cgi` transport runs.
    enum CGIProgram: Sendable {
        /// An absolute path.
        case path(String)
        /// A product SwiftPM built next to the running tests.
        case product(String)
    }

    let kind: Kind

    /// Calls the application in this process, with the CGI variables Apache would send and
    /// without any socket: the fastest transport, for most tests.
    public static let inProcess = GatewayTestTransport(kind: .inProcess)

    /// Runs the real FastCGI server in this process on a Unix socket in a fresh temporary
    /// directory, and sends each request over its own connection as a web server would: what
    /// the wire protocol, the request body's streaming and the server's error handling do to
    /// a response shows here.
    public static let fastCGI = GatewayTestTransport(kind: .fastCGI)

    /// Runs `executable` once per request as a CGI/1.1 process, as Apache's mod_cgid would:
    /// the request's CGI variables (mounted at `/cgi-bin/<file name>`) as its environment, the
    /// body on its standard input, its standard output parsed as the response.
    ///
    /// A CGI application is a program, not a value in the test's process: `executable` must be
    /// the app's own executable, serving the same application through `serve()`. The
    /// application value `test(_:_:)` is called on is not used by this transport.
    public static func cgi(executable: String) -> GatewayTestTransport {
        GatewayTestTransport(kind: .cgi(.path(executable)))
    }

    /// Like ``cgi(executable:)`` for the executable product `product` of the package under test,
    /// which `swift build --build-tests` (and so `swift test`) builds next to the tests.
    public static func cgi(product: String) -> GatewayTestTransport {
        GatewayTestTransport(kind: .cgi(.product(product)))
    }

    /// Starts a real nginx (from the system's installation, one worker, in a temporary prefix on
    /// a free port of 127.0.0.1) in front of the real FastCGI server in this process, configured
    /// as the project's `nginx/fastcgi-unix.conf` tells users to: what nginx's own handling
    /// (headers, chunked encoding, buffering) does to a response shows here. When nginx is not
    /// installed, ``Gateway/GatewayApplication/test(_:_:)`` throws ``GatewayTestError`` saying so; check
    /// ``isAvailable`` to leave the transport out instead.
    public static let nginx = GatewayTestTransport(kind: .nginx)

    /// Whether this transport can run here: nginx is installed for ``nginx``, the executable
    /// exists for ``cgi(executable:)`` and ``cgi(product:)``. For a test's `.enabled(if:)`.
    public var isAvailable: Bool {
        switch kind {
        case .inProcess, .fastCGI: true
        case .cgi(let program): (try? program.resolve()) != nil
        case .nginx: (try? NginxRequirement.check()) != nil
        }
    }

    /// A short name for test output: `in-process`, `fastcgi`, `cgi(<program>)` or `nginx`.
    public var description: String {
        switch kind {
        case .inProcess: "in-process"
        case .fastCGI: "fastcgi"
        case .cgi(.path(let path)): "cgi(\(path))"
        case .cgi(.product(let name)): "cgi(\(name))"
        case .nginx: "nginx"
        }
    }
}

extension GatewayTestTransport.CGIProgram {
    /// The executable's path; throws, saying what is missing, when there is none.
    func resolve() throws -> String {
        switch self {
        case .path(let path):
            guard access(path, X_OK) == 0 else {
                throw GatewayTestError("the .cgi transport's executable \(path) does not exist or is not executable")
            }
            return path
        case .product(let name):
            do {
                return try BuiltProducts.executable(named: name)
            } catch {
                throw GatewayTestError(
                    "the .cgi transport's product \(name) is not built next to the tests (\(BuiltProducts.directory)):"
                        + " build it with swift build --build-tests (or swift build --product \(name))"
                )
            }
        }
    }
}
