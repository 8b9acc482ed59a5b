import ArgumentParser
import Foundation
import GatewayTestHarness
import Logging
import SwiftGateway
import Testing

/// `GatewayOptions`: flags parsed in process; environment variables and exit statuses through
/// the built `gateway-probe` and `hello` (a test must not change this process's environment).
@Suite struct GatewayOptionsTests {
    @Test func goodFlagsParse() throws {
        let options = try GatewayOptions.parse([
            "--port", "9000", "--host", "::1", "--max-body-bytes", "0", "--log-level", "DEBUG",
            "--socket-mode", "0600", "--max-requests-per-connection", "65535", "--idle-timeout", "0",
            "--params-timeout", "5", "--stall-timeout", "5", "--close-timeout", "1",
            "--output-buffer-bytes", "65536", "--threads", "2", "--shutdown-timeout", "31536000",
            "--status-path", "/fpm-status", "--ping-path", "/ping", "--slow-request-seconds", "0",
        ])
        #expect(options.logLevel == .debug)
        #expect(try GatewayOptions.parse([]).logLevel == .info)
    }

    static let badFlags: [[String]] = [
        ["--port", "0"], ["--port", "65536"], ["--port", "abc"], ["--port", "+80"],
        ["--socket", "/tmp/a.sock", "--port", "9000"],
        ["--socket", "/tmp/" + String(repeating: "a", count: 200)],
        ["--max-requests-per-connection", "9223372036854775807"],
        ["--max-requests-per-connection", "65536"], ["--max-connections", "0"],
        ["--max-body-bytes", "1e9"], ["--idle-timeout", "99999999999"], ["--threads", "0"],
        ["--params-timeout", "0"], ["--output-buffer-bytes", "1"], ["--log-level", "loud"],
        ["--socket-mode", "0999"], ["--socket-mode", "1777"], ["--host", ""],
        ["--status-path", "status"], ["--status-path", ""], ["--ping-path", "/ping?x"], ["--ping-path", "/a b"],
        ["--status-path", "/s", "--ping-path", "/s"], ["--slow-request-seconds", "-1"],
        ["--slow-request-seconds", "99999999999"],
    ]

    @Test(arguments: badFlags) func badFlagIsAnError(arguments: [String]) {
        #expect(throws: (any Error).self, "\(arguments)") { try GatewayOptions.parse(arguments) }
    }

    /// Each value, as a flag of the built probe and as its variable: exit status 64 and a
    /// message naming it, never a silent default (the probe used to trap on the first
    /// connection with the last one).
    static let badSettings: [(arguments: [String], environment: [String: String], named: String)] = [
        (["--port", "0"], [:], "--port 0"),
        (["--log-level", "loud"], [:], "--log-level loud"),
        (["--socket", "/tmp/x.sock", "--port", "9000"], [:], "--socket and --port"),
        ([], ["GATEWAY_MAX_REQUESTS_PER_CONNECTION": "9223372036854775807"], "GATEWAY_MAX_REQUESTS_PER_CONNECTION="),
        ([], ["GATEWAY_LOG_LEVEL": "loud"], "GATEWAY_LOG_LEVEL=loud"),
        ([], ["GATEWAY_SOCKET": "/tmp/x.sock", "GATEWAY_PORT": "9000"], "GATEWAY_SOCKET and GATEWAY_PORT"),
        ([], ["GATEWAY_PORT": "abc"], "GATEWAY_PORT=abc"),
        ([], ["GATEWAY_IDLE_TIMEOUT": "99999999999"], "GATEWAY_IDLE_TIMEOUT="),
        ([], ["GATEWAY_SOCKET_MODE": "0999"], "GATEWAY_SOCKET_MODE=0999"),
        ([], ["GATEWAY_MAX_BODY_BYTES": "1G"], "GATEWAY_MAX_BODY_BYTES=1G"),
        ([], ["GATEWAY_THREADS": "0"], "GATEWAY_THREADS=0"),
        ([], ["GATEWAY_MAX_CONNECTIONS": "-1"], "GATEWAY_MAX_CONNECTIONS=-1"),
        ([], ["GATEWAY_PARAMS_TIMEOUT": "x"], "GATEWAY_PARAMS_TIMEOUT=x"),
        ([], ["GATEWAY_STALL_TIMEOUT": "0"], "GATEWAY_STALL_TIMEOUT=0"),
        ([], ["GATEWAY_CLOSE_TIMEOUT": "99999999999"], "GATEWAY_CLOSE_TIMEOUT="),
        ([], ["GATEWAY_OUTPUT_BUFFER_BYTES": "12"], "GATEWAY_OUTPUT_BUFFER_BYTES=12"),
        ([], ["GATEWAY_SHUTDOWN_TIMEOUT": "4s"], "GATEWAY_SHUTDOWN_TIMEOUT=4s"),
        (["--status-path", "status"], [:], "--status-path status"),
        (["--ping-path", "/a?b"], [:], "--ping-path /a?b"),
        ([], ["GATEWAY_STATUS_PATH": "status"], "GATEWAY_STATUS_PATH=status"),
        ([], ["GATEWAY_PING_PATH": "ping"], "GATEWAY_PING_PATH=ping"),
        ([], ["GATEWAY_STATUS_PATH": "/x", "GATEWAY_PING_PATH": "/x"], "--status-path and --ping-path"),
        ([], ["GATEWAY_SLOW_REQUEST_SECONDS": "1.5"], "GATEWAY_SLOW_REQUEST_SECONDS=1.5"),
    ]

    @Test(arguments: badSettings.indices) func probeExits64NamingTheBadValue(index: Int) async throws {
        let (arguments, environment, named) = Self.badSettings[index]
        let result = try await ProcessRunner.run(
            try BuiltProducts.executable(named: "gateway-probe"),
            arguments: arguments,
            environment: ProcessRunner.inheritedEnvironment(overriding: environment),
            timeout: .seconds(30)
        )
        #expect(result.status == 64, "\(arguments) \(environment): \(result.errorText)")
        #expect(result.errorText.contains(named), "\(result.errorText)")
    }

    @Test func cgiRequestReadsNoFlagsButChecksItsVariables() async throws {
        let hello = try BuiltProducts.executable(named: "hello")
        let request = ["REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_PROTOCOL": "HTTP/1.1"]
        // Apache passes `?--port+abc` as the arguments `--port abc`: they are not flags.
        let answered = try await ProcessRunner.run(
            hello,
            arguments: ["--port", "abc"],
            environment: ProcessRunner.inheritedEnvironment(overriding: request),
            timeout: .seconds(30)
        )
        #expect(answered.status == 0, "\(answered.errorText)")
        #expect(String(decoding: answered.standardOutput, as: UTF8.self).hasSuffix("Hello, world!"))
        // The variables a CGI request uses are checked like the server's.
        let refused = try await ProcessRunner.run(
            hello,
            environment: ProcessRunner.inheritedEnvironment(
                overriding: request.merging(["GATEWAY_LOG_LEVEL": "loud"]) { $1 }
            ),
            timeout: .seconds(30)
        )
        #expect(refused.status == 64)
        #expect(refused.errorText.contains("GATEWAY_LOG_LEVEL=loud"), "\(refused.errorText)")
        // The web server's client gets a clean 500 rather than a malformed response.
        #expect(try ResponseParser.parseCGI(refused.standardOutput).status == 500)
    }

    @Test func helpListsEveryFlagWithItsVariable() async throws {
        let result = try await ProcessRunner.run(
            try BuiltProducts.executable(named: "gateway-probe"),
            arguments: ["--help"],
            environment: ProcessRunner.inheritedEnvironment,
            timeout: .seconds(30)
        )
        #expect(result.status == 0)
        // argument-parser wraps help lines: compare with runs of white space as one space.
        let help = String(decoding: result.standardOutput, as: UTF8.self)
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        for variable in [
            "GATEWAY_SOCKET", "GATEWAY_SOCKET_MODE", "GATEWAY_SOCKET_OWNER", "GATEWAY_SOCKET_GROUP", "GATEWAY_PORT",
            "GATEWAY_HOST", "GATEWAY_MAX_CONNECTIONS", "GATEWAY_MAX_REQUESTS", "GATEWAY_MAX_REQUESTS_PER_CONNECTION",
            "GATEWAY_MAX_PARAMS_BYTES", "GATEWAY_MAX_PARAMS_BYTES_PER_CONNECTION", "GATEWAY_MAX_PARAMS",
            "GATEWAY_MAX_BODY_BYTES", "GATEWAY_OUTPUT_BUFFER_BYTES", "GATEWAY_IDLE_TIMEOUT", "GATEWAY_PARAMS_TIMEOUT",
            "GATEWAY_STALL_TIMEOUT", "GATEWAY_CLOSE_TIMEOUT", "GATEWAY_SHUTDOWN_TIMEOUT", "GATEWAY_THREADS",
            "GATEWAY_LOG_LEVEL", "GATEWAY_STATUS_PATH", "GATEWAY_PING_PATH", "GATEWAY_SLOW_REQUEST_SECONDS",
        ] {
            #expect(help.contains("[env: \(variable)]"), "\(variable) missing from:\n\(help)")
        }
    }

    /// Values at the edges of their ranges, from the environment: the probe starts and serves.
    @Test func goodVariablesAtTheirEdgesServe() async throws {
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let probe = try await FastCGIAppProcess.start(
            try BuiltProducts.executable(named: "gateway-probe"),
            socketPath: directory.path + "/fcgi.sock",
            environment: [
                "GATEWAY_MAX_REQUESTS_PER_CONNECTION": "65535", "GATEWAY_IDLE_TIMEOUT": "31536000",
                "GATEWAY_MAX_BODY_BYTES": String(1 << 50), "GATEWAY_LOG_LEVEL": "DEBUG", "GATEWAY_SOCKET_MODE": "0600",
                "GATEWAY_PORT": "",
            ],
            logFile: directory.path + "/server.log"
        )
        defer { Task { await probe.cleanUp() } }
        let client = try await FastCGITestClient.connect(unixPath: probe.socketPath)
        let response = try await client.perform(.get("/hello"))
        #expect(response.bodyString == "Hello, world!", "\(probe.log)")
        #expect(await probe.stop() == .exited(0), "\(probe.log)")
    }
}
