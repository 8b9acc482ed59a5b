import Foundation
import GatewayTestHarness
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A deploy is a restart under load: two `gateway-probe` backends behind one nginx upstream,
/// configured exactly as the shipped `nginx/fastcgi-two-backends.conf` says, with wrk sending
/// GETs or 1 KiB POSTs on 64 kept connections while each backend in turn gets `SIGTERM` and a
/// successor on the same socket. What the client sees is counted: not one error.
@Suite(.serialized) struct RollingRestartTests {
    /// How the two restarts follow each other.
    enum Timing: String, CaseIterable, CustomTestStringConvertible {
        /// The second backend restarts as soon as the first one's successor accepts.
        case backToBack = "back to back"
        /// Two seconds apart.
        case spaced = "2 s apart"
        var testDescription: String { rawValue }
    }

    enum Method: String, CaseIterable, CustomTestStringConvertible {
        case get = "GET /hello"
        case post = "POST /echo (1 KiB)"
        var testDescription: String { rawValue }
    }

    @Test(
        "a rolling restart of two backends through nginx under wrk -c64: zero client errors",
        arguments: Method.allCases,
        Timing.allCases
    )
    func rollingRestartUnderLoad(method: Method, timing: Timing) async throws {
        let probe = try BuiltProducts.executable(named: "gateway-probe")
        let directory = try TemporaryDirectory(prefix: "sgw-roll-", in: "/tmp")
        defer { directory.remove() }
        func socket(_ number: Int) -> String { directory.path + "/app-\(number).sock" }
        func start(_ number: Int, generation: Int) async throws -> FastCGIAppProcess {
            try await FastCGIAppProcess.start(
                probe,
                socketPath: socket(number),
                logFile: directory.path + "/app-\(number)-\(generation).log"
            )
        }
        try await StartedProcesses.with { started in
            let backends = [
                started.add(try await start(1, generation: 1)), started.add(try await start(2, generation: 1)),
            ]
            var successors: [FastCGIAppProcess] = []
            try await WebServerInstance.with({
                try await NginxFastCGI.start(
                    shipped: "nginx/fastcgi-two-backends.conf",
                    socketDirectory: directory.path
                )
            }) { server in
                let loadSeconds = 8
                let loadStart = ContinuousClock.now
                let load = try LoadDuringRestart.start(
                    method == .post ? "POST" : "GET",
                    port: server.port,
                    directory: directory,
                    seconds: loadSeconds
                )
                try await Task.sleep(for: .seconds(1.5))
                var restartTimes: [String] = []
                for number in [1, 2] {
                    let old = backends[number - 1]
                    let began = ContinuousClock.now
                    old.send(signal: SIGTERM)
                    // The old instance removes its socket file at once; its successor binds the path
                    // while it drains. nginx meanwhile sends new connections to the other backend.
                    let gone = await poll(timeout: .seconds(10)) {
                        !PortAllocator.isListening(unixSocket: socket(number))
                    }
                    #expect(gone, "backend \(number) still accepts after SIGTERM")
                    let successor = started.add(try await start(number, generation: 2))
                    successors.append(successor)
                    // Under load, or the test shows nothing: both restarts inside wrk's run.
                    #expect(
                        ContinuousClock.now - loadStart < .seconds(loadSeconds) - .milliseconds(500),
                        "backend \(number)'s successor came up after the load ended"
                    )
                    let exit = await old.waitForExit(timeout: .seconds(40))
                    #expect(exit == .exited(0), "backend \(number) ended \(String(describing: exit)):\n\(old.logTail)")
                    restartTimes.append("backend \(number) replaced in \(Int(seconds(since: began) * 1000)) ms")
                    if timing == .spaced, number == 1 { try await Task.sleep(for: .seconds(2)) }
                }
                let outcome = try await load.value
                let upstreamErrors = LoadDuringRestart.upstreamErrors(of: server)
                reportFigure(
                    "rolling restart, \(method.rawValue), \(timing.rawValue): \(outcome.requests) requests "
                        + "(\(Int(outcome.requestsPerSecond)) req/s), \(outcome.errors) client errors \(outcome.detail); "
                        + "nginx logged \(upstreamErrors.count) upstream error(s); \(restartTimes.joined(separator: ", "))"
                )
                #expect(
                    outcome.errors == 0,
                    "\(outcome.errors) client-visible errors: \(outcome.detail)\n\(upstreamErrors.prefix(10).joined(separator: "\n"))"
                )
                #expect(outcome.requests > loadSeconds * 500, "only \(outcome.requests) requests")
                for successor in successors {
                    #expect(successor.isRunning && crashSigns(in: successor.log).isEmpty, "\(successor.logTail)")
                }
            }
        }
    }
}
