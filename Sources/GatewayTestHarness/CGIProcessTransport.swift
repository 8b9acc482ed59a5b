import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs a CGI program once per request, with the environment and standard input Apache's
/// mod_cgid would give it (see ``CGIEnvironment``), and parses its standard output.
/// The response's ``TestResponse/errors`` is the program's standard error and
/// ``TestResponse/exitStatus`` its exit status.
public struct CGIProcessTransport: GatewayTransport {
    /// The name test output shows for this transport.
    public let name = "cgi-process"
    /// The program to run.
    public let executable: String
    /// How requests become environment variables.
    public var environment: CGIEnvironment
    /// How long one run may take.
    public var timeout: Duration

    /// A transport running `executable`, mounted at `/cgi-bin/<its name>` like Apache's ScriptAlias.
    public init(executable: String, environment: CGIEnvironment? = nil, timeout: Duration = .seconds(60)) {
        self.executable = executable
        let file = executable.split(separator: "/").last.map(String.init) ?? executable
        self.environment = environment ?? CGIEnvironment(scriptName: "/cgi-bin/\(file)", scriptFilename: executable)
        self.timeout = timeout
    }

    /// Runs the program once with the request's CGI environment and body on standard input.
    public func perform(_ request: TestRequest) async throws -> TestResponse {
        let result = try await run(environment: environment.variables(for: request), input: .bytes(request.body))
        guard !result.standardOutput.isEmpty else {
            throw TransportError("\(executable) wrote nothing (exit \(result.status)); stderr: \(result.errorText)")
        }
        var response = try ResponseParser.parseCGI(result.standardOutput)
        response.errors = result.errorText
        response.exitStatus = result.status
        return response
    }

    /// Runs the program with exactly `environment` and `input`; the raw result.
    public func run(environment: [(name: String, value: String)], input: ProcessInput) async throws -> ProcessResult {
        try await ProcessRunner.run(executable, environment: environment, input: input, timeout: timeout)
    }
}

/// Finds the executables SwiftPM built next to the running test bundle.
public enum BuiltProducts {
    /// The build directory of the running tests (e.g. `.build/x86_64-unknown-linux-gnu/debug`).
    public static var directory: String {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var directory = (executable as NSString).deletingLastPathComponent
        // On macOS the tests run inside a .xctest bundle.
        while directory.hasSuffix(".xctest") || directory.hasSuffix("Contents") || directory.hasSuffix("MacOS") {
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory
    }

    /// The path of the built executable `name`; throws, saying how to build it, when missing.
    public static func executable(named name: String) throws -> String {
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TransportError("\(path) is missing: build it first (swift build --product \(name))")
        }
        return path
    }
}

/// A pseudo-terminal pair, to start a program whose standard input is a terminal.
public final class PseudoTerminal: Sendable {
    /// Our side.
    public let primary: Int32
    /// The terminal side, for the child's standard input.
    public let secondary: Int32

    /// Opens a new pair; neither becomes our controlling terminal.
    public init() throws {
        // Glibc's module map hides the XSI pseudo-terminal functions; look them up instead.
        typealias OpenPT = @convention(c) (Int32) -> Int32
        typealias Control = @convention(c) (Int32) -> Int32
        typealias Name = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?
        guard let openSymbol = dlsym(nil, "posix_openpt"), let grantSymbol = dlsym(nil, "grantpt"),
            let unlockSymbol = dlsym(nil, "unlockpt"), let nameSymbol = dlsym(nil, "ptsname")
        else { throw TransportError("the C library has no pseudo-terminal functions") }
        let openPT = unsafeBitCast(openSymbol, to: OpenPT.self)
        let grant = unsafeBitCast(grantSymbol, to: Control.self)
        let unlock = unsafeBitCast(unlockSymbol, to: Control.self)
        let name = unsafeBitCast(nameSymbol, to: Name.self)
        let primary = openPT(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard primary >= 0 else { throw TransportError("posix_openpt failed: errno \(errno)") }
        guard grant(primary) == 0, unlock(primary) == 0, let path = name(primary) else {
            close(primary)
            throw TransportError("cannot set up a pseudo-terminal: errno \(errno)")
        }
        let secondary = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard secondary >= 0 else {
            close(primary)
            throw TransportError("cannot open \(String(cString: path)): errno \(errno)")
        }
        self.primary = primary
        self.secondary = secondary
    }

    deinit {
        close(primary)
        close(secondary)
    }
}
