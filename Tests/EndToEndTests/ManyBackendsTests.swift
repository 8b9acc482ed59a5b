import Foundation
import GatewayTestHarness
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Backends on several hosts behind one nginx upstream, over TCP, as the shipped
/// `nginx/fastcgi-tcp-backends.conf` says: three `gateway-probe`s on loopback addresses of
/// their own (127.0.0.2–4, the same port), each accepting only nginx's address
/// (`FCGI_WEB_SERVER_ADDRS=127.0.0.1`). Under wrk -c64 one is `SIGKILL`ed (a crash) and
/// another restarted gracefully.
@Suite(.serialized) struct ManyBackendsTests {
    /// A backend on 127.0.0.`host`:`port`, started and watched by the test.
    final class Backend: Sendable {
        let host: UInt8
        let process: RunningProcess

        init(host: UInt8, port: Int, probe: String, logFile: String) async throws {
            self.host = host
            process = try ProcessRunner.start(
                probe,
                arguments: ["--host", "127.0.0.\(host)", "--port", String(port)],
                environment: ProcessRunner.inheritedEnvironment(overriding: ["FCGI_WEB_SERVER_ADDRS": "127.0.0.1"]),
                logFile: logFile
            )
            let listening = await poll(timeout: .seconds(30)) {
                !process.isRunning || PortAllocator.isListening(loopbackHost: host, port: port)
            }
            guard listening, process.isRunning else {
                await process.stop(signal: SIGKILL)
                throw TransportError("backend 127.0.0.\(host) did not listen:\n\(process.logTail)")
            }
        }
    }

    @Test(
        "three TCP backends, one SIGKILLed and one restarted under load: GET loses nothing",
        arguments: ["GET", "POST"]
    )
    func oneKilledOneRestarted(method: String) async throws {
        let probe = try BuiltProducts.executable(named: "gateway-probe")
        let directory = try TemporaryDirectory(prefix: "sgw-hosts-", in: "/tmp")
        defer { directory.remove() }
        let port = try PortAllocator.freePort()
        try await StartedProcesses.with { started in
            var backends: [Backend] = []
            for host: UInt8 in [2, 3, 4] {
                let backend = try await Backend(
                    host: host,
                    port: port,
                    probe: probe,
                    logFile: directory.path + "/app-\(host).log"
                )
                started.add(backend.process)
                backends.append(backend)
            }
            let replacements = [
                ("10.0.0.11:9000", "127.0.0.2:\(port)"), ("10.0.0.12:9000", "127.0.0.3:\(port)"),
                ("10.0.0.13:9000", "127.0.0.4:\(port)"),
            ]
            try await WebServerInstance.with({
                try await NginxFastCGI.start(
                    shipped: "nginx/fastcgi-tcp-backends.conf",
                    socketDirectory: directory.path,
                    replacements: replacements
                )
            }) { server in
                // Every backend answers through nginx before the load.
                for _ in 0..<12 { #expect(try await send(port: server.port, "GET", "/hello").status == 200) }
                let loadSeconds = 8
                let load = try LoadDuringRestart.start(
                    method,
                    port: server.port,
                    directory: directory,
                    seconds: loadSeconds
                )
                try await Task.sleep(for: .seconds(2))
                await backends[0].process.stop(signal: SIGKILL)
                try await Task.sleep(for: .seconds(2))
                let restarted = backends[1]
                restarted.process.send(signal: SIGTERM)
                let closed = await poll(timeout: .seconds(10)) {
                    !PortAllocator.isListening(loopbackHost: restarted.host, port: port)
                }
                #expect(closed, "127.0.0.3 still accepts after SIGTERM")
                let successor = try await Backend(
                    host: 3,
                    port: port,
                    probe: probe,
                    logFile: directory.path + "/app-3-successor.log"
                )
                started.add(successor.process)
                backends.append(successor)
                #expect(
                    await restarted.process.waitForExit(timeout: .seconds(40)) == .exited(0),
                    "\(restarted.process.logTail)"
                )
                let outcome = try await load.value
                let upstreamErrors = LoadDuringRestart.upstreamErrors(of: server)
                reportFigure(
                    "three TCP backends, \(method), one SIGKILLed and one restarted: \(outcome.requests) requests, "
                        + "\(outcome.errors) client errors \(outcome.detail); nginx logged \(upstreamErrors.count) upstream error(s), "
                        + "\(upstreamErrors.filter { $0.contains("127.0.0.2:") }.count) with the killed backend, "
                        + "\(upstreamErrors.filter { $0.contains("127.0.0.3:") }.count) with the restarted one"
                )
                if method == "GET" {
                    #expect(
                        outcome.errors == 0,
                        "\(outcome.errors) client errors: \(outcome.detail)\n\(upstreamErrors.prefix(10).joined(separator: "\n"))"
                    )
                } else {
                    // What POST gets (README, fastcgi-tcp-backends.conf): 502s for the requests in
                    // flight on the killed backend, and for those nginx sent on its kept connections
                    // before it saw them close; and, over TCP, for connections the kernel completed
                    // in the instant the restarted backend stopped listening (0 to ~15 here). A bound,
                    // not zero: what must not happen is seconds of 502s.
                    #expect(outcome.errors < 200, "\(outcome.errors) client errors: \(outcome.detail)")
                }
                #expect(outcome.requests > loadSeconds * 500, "only \(outcome.requests) requests")
                for backend in backends.dropFirst() where backend !== restarted {
                    #expect(backend.process.isRunning, "\(backend.process.logTail)")
                }
            }
        }
    }
}
