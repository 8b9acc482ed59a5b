import Foundation
import GatewayTestHarness
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `hello` under Apache's mod_fcgid with the shipped `apache/fcgid.conf`: Apache starts the
/// app itself with a listening socket on fd 0, recycles it after `FcgidMaxRequestsPerProcess`
/// requests, and stops it with Apache.
@Suite(.serialized) struct ModFcgidTests {
    static let module = "/usr/lib/apache2/modules/mod_fcgid.so"
    static let hasModFcgid = FileManager.default.fileExists(atPath: module)

    /// mod_fcgid logs each process's end at `info`: "…process /path/hello(1234) exit(reason),
    /// terminated by calling exit(), return code: 0".
    static func exitLines(_ log: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains("mod_fcgid: process") && $0.contains(" exit(") }
    }

    @Test(.enabled(if: hasModFcgid, "libapache2-mod-fcgid is missing: scripts/install-deps"))
    func recyclesUnderLoadWithoutAFailedRequestAndExitsZeroWithApache() async throws {
        let hello = try BuiltProducts.executable(named: "hello")
        let own = try TemporaryDirectory(prefix: "swift-gateway-fcgid-")
        defer { own.remove() }
        let app = try own.copyExecutable(hello, to: "hello")
        let requestsPerProcess = 50
        let config = try ShippedConfig.load(
            "apache/fcgid.conf",
            socketDirectory: own.path,
            replacements: [
                ("/usr/local/bin/app", app),
                ("FcgidMaxRequestsPerProcess 10000", "FcgidMaxRequestsPerProcess \(requestsPerProcess)"),
            ]
        )
        // The error log lives in our own directory, so that it can be read after Apache stopped
        // (stopping removes Apache's); mod_fcgid keeps its sockets and process table there too.
        let errorLog = own.path + "/error.log"
        let server = try await ApacheFastCGI.start(
            name: "apache+mod_fcgid",
            serverContext: """
                LoadModule fcgid_module \(Self.module)
                ErrorLog "\(errorLog)"
                LogLevel warn fcgid:info
                FcgidIPCDir "\(own.path)/ipc"
                FcgidProcessTableFile "\(own.path)/fcgid_shm"
                \(config)
                """
        )
        var stopped = false
        defer { if !stopped { Task { await server.stop() } } }

        // The mount point: SCRIPT_NAME /app, the rest of the path in PATH_INFO.
        let first = try await HTTPClient.send(port: server.port, method: "GET", target: "/app", timeout: .seconds(60))
        #expect(first.status == 200 && String(decoding: first.body, as: UTF8.self) == "Hello, world!")
        let echo = try await HTTPClient.send(
            port: server.port,
            method: "POST",
            target: "/app/echo",
            body: Array("through mod_fcgid".utf8),
            timeout: .seconds(60)
        )
        #expect(String(decoding: echo.body, as: UTF8.self) == "through mod_fcgid", "\(echo.status)")

        // 150 sequential requests, then 300 from 6 clients at once: at 50 requests per process,
        // several processes are recycled while others serve.
        let tally = Tally()
        @Sendable func request() async {
            do {
                let response = try await HTTPClient.send(
                    port: server.port,
                    method: "GET",
                    target: "/app",
                    timeout: .seconds(60)
                )
                if response.status == 200, String(decoding: response.body, as: UTF8.self) == "Hello, world!" {
                    tally.record(nil)
                } else {
                    tally.record("status \(response.status)")
                }
            } catch {
                tally.record("\(error)")
            }
        }
        for _ in 0..<150 { await request() }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask { for _ in 0..<50 { await request() } }
            }
        }
        let (answered, failed) = tally.counts
        #expect(failed.isEmpty, "\(failed.count) failed: \(failed.prefix(5))\n\(own.read("error.log").suffix(3000))")
        #expect(answered == 450)
        // No process serves more than 50 requests: 452 needed at least 10 of them, each started
        // by mod_fcgid (it logs their ends only as it reaps them, mostly at shutdown).
        let started = own.read("error.log").split(separator: "\n").filter {
            $0.contains("mod_fcgid: server") && $0.hasSuffix(") started")
        }
        let needed = (452 + requestsPerProcess - 1) / requestsPerProcess
        #expect(
            started.count >= needed,
            "\(started.count) processes for 452 requests:\n\(own.read("error.log").suffix(3000))"
        )

        await server.stop()
        stopped = true
        let log = own.read("error.log")
        let exits = Self.exitLines(log)
        #expect(exits.count == started.count, "\(started.count) started, \(exits.count) ended:\n\(log.suffix(3000))")
        for line in exits {
            #expect(line.contains("terminated by calling exit(), return code: 0"), "\(line)")
        }
        print("mod_fcgid: 452 requests answered, \(started.count) processes started, \(exits.count) exited 0")
    }
}

/// Answers and failures of requests sent from several tasks.
final class Tally: Sendable {
    private let state = Mutex((answered: 0, failures: [String]()))

    /// Records one answer (nil) or failure.
    func record(_ failure: String?) {
        state.withLock {
            if let failure { $0.failures.append(failure) } else { $0.answered += 1 }
        }
    }

    var counts: (answered: Int, failures: [String]) { state.withLock { $0 } }
}
