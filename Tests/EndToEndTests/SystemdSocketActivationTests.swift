import Foundation
import GatewayTestHarness
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The app started the way systemd starts a socket-activated `Type=notify` service
/// (`systemd/swift-gateway.socket` + `.service`): the listening socket on fd 3 with
/// `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`, and `NOTIFY_SOCKET` to report readiness on.
/// The real `systemd-socket-activate` binds the socket and passes it, exactly as systemd does.
@Suite(.serialized) struct SystemdSocketActivationTests {
    static let probe = Result { try BuiltProducts.executable(named: "gateway-probe") }

    /// `systemd-socket-activate` listening on `sockets` (named `names`), passing `NOTIFY_SOCKET`
    /// and `variables`, and starting `command`.
    static func activate(
        sockets: [String],
        names: [String],
        notifySocket: String,
        variables: [String: String] = [:],
        command: [String],
        logFile: String
    ) async throws -> RunningProcess {
        let tool = try RequiredTool.locate("systemd-socket-activate")
        var arguments = sockets.flatMap { ["--listen=\($0)"] }
        arguments.append("--fdname=" + names.joined(separator: ":"))
        // It passes its children only LISTEN_* and the variables named here.
        arguments.append("--setenv=NOTIFY_SOCKET=\(notifySocket)")
        for (name, value) in variables.sorted(by: { $0.key < $1.key }) { arguments.append("--setenv=\(name)=\(value)") }
        let process = try ProcessRunner.start(tool, arguments: arguments + command, logFile: logFile)
        // It starts the command on the first connection (as systemd starts a socket-activated
        // service on demand): connect once, and let that connection wait in the backlog.
        let listening = await poll(timeout: .seconds(30)) {
            sockets.allSatisfy { PortAllocator.isListening(unixSocket: $0) }
        }
        guard listening else {
            await process.stop()
            throw TransportError("systemd-socket-activate did not listen:\n\(process.logTail)")
        }
        return process
    }

    /// Holds the listening socket at `socket` (bound by `systemd-socket-activate`) and starts
    /// `app` on it twice in a row, with fd 3, `LISTEN_FDS=1` and `LISTEN_PID` set to each
    /// child's pid, as systemd does on `systemctl restart`. `app-N.pid` and `app-N.status` in
    /// `directory` name each run's process and its exit status.
    static func holdSocketAndRunTwice(
        _ app: String,
        socket: String,
        notifySocket: String,
        directory: TemporaryDirectory
    ) async throws -> RunningProcess {
        // `$$` of the inner shell is the pid the app keeps when that shell execs it.
        let holder = try directory.write(
            "holder.sh",
            """
            for run in 1 2; do
                /bin/sh -c 'LISTEN_PID=$$; export LISTEN_PID; exec "$0"' "$APP" &
                echo $! > "$DIR/app-$run.pid"
                wait $!
                echo $? > "$DIR/app-$run.status"
            done

            """
        )
        return try await activate(
            sockets: [socket],
            names: ["app"],
            notifySocket: notifySocket,
            variables: ["APP": app, "DIR": directory.path],
            command: ["/bin/sh", holder],
            logFile: directory.path + "/app.log"
        )
    }

    /// Stops the apps `holdSocketAndRunTwice` started (by the pids they wrote) and the holder.
    static func stopHolder(_ holder: RunningProcess, directory: TemporaryDirectory) async {
        for run in 1...2 {
            let text = directory.read("app-\(run).pid").trimmingCharacters(in: .whitespacesAndNewlines)
            let status = directory.read("app-\(run).status")
            if let pid = pid_t(text), pid > 0, status.isEmpty { kill(pid, SIGKILL) }
        }
        await holder.stop()
    }

    @Test func servesEverySocketSystemdPassesAndNotifiesReadyAndStopping() async throws {
        let probe = try Self.probe.get()
        let directory = try TemporaryDirectory(prefix: "swift-gateway-systemd-")
        defer { directory.remove() }
        let notifications = try NotifySocketListener(path: directory.path + "/notify")
        let sockets = [directory.path + "/app.sock", directory.path + "/admin.sock"]
        let app = try await Self.activate(
            sockets: sockets,
            names: ["app", "admin"],
            notifySocket: notifications.path,
            command: [probe],
            logFile: directory.path + "/app.log"
        )
        let ready = await notifications.waitFor("READY=1", timeout: .seconds(30))
        guard ready.found else {
            await app.stop()
            Issue.record("no READY=1 (got \(ready.messages)):\n\(app.logTail)")
            return
        }
        let status = ready.messages.last?.first { $0.hasPrefix("STATUS=") } ?? ""
        #expect(status.contains("fd 3 (app)") && status.contains("fd 4 (admin)"), "\(status)")
        for socket in sockets {
            let client = try await FastCGITestClient.connect(unixPath: socket)
            let response = try await client.perform(.get("/hello"))
            #expect(response.bodyString == "Hello, world!", "through \(socket)")
        }
        // systemd-socket-activate execs the app: its pid is the app's.
        app.send(signal: SIGTERM)
        let stopping = await notifications.waitFor("STOPPING=1", timeout: .seconds(30))
        #expect(stopping.found, "no STOPPING=1 after SIGTERM (got \(stopping.messages))")
        #expect(stopping.messages.last?.contains { $0.hasPrefix("STATUS=Stopping") } == true)
        #expect(await app.stop(timeout: .seconds(30)) == .exited(0), "\(app.logTail)")
        #expect(
            app.logTail.contains("systemd passed 2 listening socket(s): fd 3 (app), fd 4 (admin)"),
            "\(app.logTail)"
        )
    }

    /// `NOTIFY_SOCKET` may name an abstract socket (`@name`), as systemd's own does.
    @Test func notifiesAnAbstractNotifySocket() async throws {
        let probe = try Self.probe.get()
        let directory = try TemporaryDirectory(prefix: "swift-gateway-systemd-abstract-")
        defer { directory.remove() }
        let name = "@swift-gateway-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let notifications = try NotifySocketListener(path: name)
        let app = try await Self.activate(
            sockets: [directory.path + "/app.sock"],
            names: ["app"],
            notifySocket: name,
            command: [probe],
            logFile: directory.path + "/app.log"
        )
        let ready = await notifications.waitFor("READY=1", timeout: .seconds(30))
        #expect(ready.found, "no READY=1 on \(name) (got \(ready.messages)):\n\(app.logTail)")
        #expect(await app.stop(timeout: .seconds(30)) == .exited(0), "\(app.logTail)")
    }

    /// The socket outlives the process: a holder keeps the listening socket (bound by
    /// `systemd-socket-activate`) and starts the app on it twice in a row, with fd 3,
    /// `LISTEN_FDS=1` and `LISTEN_PID` set to each child's pid, as systemd does on
    /// `systemctl restart`. Clients keep sending requests through the socket meanwhile: none is
    /// refused, none is lost; those that arrive while no process accepts wait in the backlog.
    @Test func restartOfTheOnlyBackendUnderLoadRefusesAndLosesNothing() async throws {
        let probe = try Self.probe.get()
        let directory = try TemporaryDirectory(prefix: "swift-gateway-systemd-restart-")
        defer { directory.remove() }
        let notifications = try NotifySocketListener(path: directory.path + "/notify")
        let socket = directory.path + "/app.sock"
        try await StartedProcesses.with { started in
            let holderProcess = try await Self.holdSocketAndRunTwice(
                probe,
                socket: socket,
                notifySocket: notifications.path,
                directory: directory
            )
            started.add(stop: { await Self.stopHolder(holderProcess, directory: directory) })
            let firstReady = await notifications.waitFor("READY=1", timeout: .seconds(30))
            try #require(firstReady.found, "the first app sent no READY=1:\n\(holderProcess.logTail)")

            let load = ClientLoad(socket: socket, workers: 4, maxRequests: 20_000, deadline: .seconds(90))
            let loadTask = Task { await load.run() }
            #expect(await poll(timeout: .seconds(30)) { load.answered >= 200 }, "no load before the restart")

            let firstPID = try #require(
                pid_t(directory.read("app-1.pid").trimmingCharacters(in: .whitespacesAndNewlines))
            )
            let answeredBeforeRestart = load.answered
            kill(firstPID, SIGTERM)
            let stopping = await notifications.waitFor("STOPPING=1", timeout: .seconds(30))
            #expect(stopping.found, "the first app sent no STOPPING=1")
            let secondReady = await notifications.waitFor("READY=1", timeout: .seconds(60))
            #expect(secondReady.found, "the second app sent no READY=1:\n\(holderProcess.logTail)")
            let answeredAtSecondStart = load.answered
            #expect(await poll(timeout: .seconds(30)) { load.answered >= answeredAtSecondStart + 200 })
            load.stop()
            await loadTask.value

            // What the held socket guarantees: no connection is refused, not even while no process
            // accepts.
            #expect(load.refused.isEmpty, "\(load.refused.count) refused connection(s): \(load.refused.prefix(5))")
            // None is lost either: not a connection the old process accepted just before SIGTERM
            // whose request it had not read yet (it waits for that request and serves it), nor one
            // accepted a moment before its listening channel closed (it waits for its set-up).
            #expect(load.lost.isEmpty, "\(load.lost.count) lost request(s): \(load.lost.prefix(5))")
            #expect(load.answered > answeredBeforeRestart + 200)
            #expect(directory.read("app-1.status").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            let secondPID = try #require(
                pid_t(directory.read("app-2.pid").trimmingCharacters(in: .whitespacesAndNewlines))
            )
            #expect(secondPID != firstPID)
            kill(secondPID, SIGTERM)
            #expect(await holderProcess.waitForExit(timeout: .seconds(30)) == .exited(0), "\(holderProcess.logTail)")
            #expect(directory.read("app-2.status").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            print(
                "systemd restart under load: \(load.answered) answered, \(load.refused.count) refused, \(load.lost.count) lost, slowest \(load.slowest)"
            )
        }
    }

    /// The same restart of the only backend, seen by clients of a web server that keeps its
    /// FastCGI connections (the shipped `nginx/fastcgi-unix.conf`, `apache/proxy-fcgi.conf`),
    /// GET and 1 KiB POSTs under wrk -c64: the old process retires its kept connections with
    /// their last responses, new ones wait in the held socket's backlog for its successor, and
    /// no client sees an error.
    @Test(arguments: ["nginx", "Apache"], ["GET", "POST"])
    func restartOfTheOnlyBackendThroughAWebServerUnderLoadLosesNothing(webServer: String, method: String) async throws {
        let probe = try Self.probe.get()
        let directory = try TemporaryDirectory(prefix: "sgw-sd-nginx-", in: "/tmp")
        defer { directory.remove() }
        let notifications = try NotifySocketListener(path: directory.path + "/notify")
        let socket = directory.path + "/app.sock"
        try await StartedProcesses.with { started in
            let holderProcess = try await Self.holdSocketAndRunTwice(
                probe,
                socket: socket,
                notifySocket: notifications.path,
                directory: directory
            )
            started.add(stop: { await Self.stopHolder(holderProcess, directory: directory) })
            try await WebServerInstance.with({
                if webServer == "Apache" {
                    // Apache's workers run as another user (systemd/swift-gateway.socket gives the
                    // socket to the web server's group with SocketGroup=; the tool has no such option).
                    chmod(socket, 0o666)
                    let config = try ShippedConfig.load("apache/proxy-fcgi.conf", socketDirectory: directory.path)
                    return try await ApacheFastCGI.start(name: "Apache (proxy-fcgi.conf)", serverContext: config)
                }
                return try await NginxFastCGI.start(shipped: "nginx/fastcgi-unix.conf", socketDirectory: directory.path)
            }) { server in
                let firstReady = await notifications.waitFor("READY=1", timeout: .seconds(30))
                try #require(firstReady.found, "the first app sent no READY=1:\n\(holderProcess.logTail)")
                let loadSeconds = 6
                let loadStart = ContinuousClock.now
                let load = try LoadDuringRestart.start(
                    method,
                    port: server.port,
                    directory: directory,
                    seconds: loadSeconds
                )
                try await Task.sleep(for: .seconds(2))
                let firstPID = try #require(
                    pid_t(directory.read("app-1.pid").trimmingCharacters(in: .whitespacesAndNewlines))
                )
                let began = ContinuousClock.now
                kill(firstPID, SIGTERM)
                let secondReady = await notifications.waitFor("READY=1", timeout: .seconds(30))
                #expect(secondReady.found, "the second app sent no READY=1:\n\(holderProcess.logTail)")
                let restart = ContinuousClock.now - began
                #expect(
                    ContinuousClock.now - loadStart < .seconds(loadSeconds) - .milliseconds(500),
                    "the successor came up after the load ended"
                )
                let outcome = try await load.value
                let upstreamErrors = LoadDuringRestart.upstreamErrors(of: server)
                print(
                    "e2e figure: systemd restart through \(webServer) keeping connections, \(method): \(outcome.requests) "
                        + "requests, \(outcome.errors) client errors \(outcome.detail); it logged \(upstreamErrors.count) "
                        + "upstream error(s); successor ready \(restart) after SIGTERM"
                )
                if webServer == "nginx" {
                    #expect(
                        outcome.errors == 0,
                        "\(outcome.errors) client errors: \(outcome.detail)\n\(upstreamErrors.prefix(10).joined(separator: "\n"))"
                    )
                } else {
                    // wrk's read errors behind Apache come from Apache closing kept client
                    // connections (MaxKeepAliveRequests), restart or not: count the failed answers.
                    let proxyErrors = server.errorLog.split(separator: "\n").filter { $0.contains("proxy_fcgi:error") }
                    print("e2e figure: Apache logged \(proxyErrors.count) proxy_fcgi error(s)")
                    // Known, but bounded: a few per restart, not a window of failures.
                    #expect(outcome.failedAnswers < 100, "\(outcome.failedAnswers) failed answers")
                    withKnownIssue(
                        "Apache mod_proxy_fcgi reuses a pooled connection the draining app has just closed",
                        isIntermittent: true
                    ) {
                        #expect(
                            outcome.failedAnswers == 0,
                            "\(outcome.failedAnswers) failed answers\n\(proxyErrors.prefix(6).joined(separator: "\n"))"
                        )
                    }
                }
                #expect(directory.read("app-1.status").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
                let secondPID = try #require(
                    pid_t(directory.read("app-2.pid").trimmingCharacters(in: .whitespacesAndNewlines))
                )
                kill(secondPID, SIGTERM)
                #expect(
                    await holderProcess.waitForExit(timeout: .seconds(30)) == .exited(0),
                    "\(holderProcess.logTail)"
                )
            }
        }
    }
}

/// A bounded client loop: `workers` clients each send `GET /hello` on a fresh connection, one
/// after the other, until stopped, `maxRequests` in all, or `deadline`; it records every
/// answer and every failure: a connection refused, or a request lost (closed unanswered, or
/// answered wrongly).
final class ClientLoad: Sendable {
    private struct State {
        var answered = 0
        var refused: [String] = []
        var lost: [String] = []
        var stopped = false
        var slowest: Duration = .zero
    }

    let socket: String
    let workers: Int
    let maxRequests: Int
    let deadline: Duration
    private let state = Mutex(State())

    init(socket: String, workers: Int, maxRequests: Int, deadline: Duration) {
        self.socket = socket
        self.workers = workers
        self.maxRequests = maxRequests
        self.deadline = deadline
    }

    var answered: Int { state.withLock { $0.answered } }
    var refused: [String] { state.withLock { $0.refused } }
    var lost: [String] { state.withLock { $0.lost } }
    var slowest: Duration { state.withLock { $0.slowest } }
    func stop() { state.withLock { $0.stopped = true } }

    func run() async {
        let end = ContinuousClock.now + deadline
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    while ContinuousClock.now < end,
                        self.state.withLock({
                            !$0.stopped && $0.answered + $0.refused.count + $0.lost.count < self.maxRequests
                        })
                    {
                        let started = ContinuousClock.now
                        var refused: String?
                        var lost: String?
                        do {
                            let client = try await FastCGITestClient.connect(unixPath: self.socket)
                            do {
                                let response = try await client.perform(.get("/hello"))
                                if response.bodyString != "Hello, world!" { lost = "answered \(response.status)" }
                            } catch {
                                lost = "\(error)"
                            }
                            await client.close()
                        } catch {
                            refused = "\(error)"
                        }
                        let elapsed = ContinuousClock.now - started
                        self.state.withLock {
                            if let refused {
                                $0.refused.append(refused)
                            } else if let lost {
                                $0.lost.append(lost)
                            } else {
                                $0.answered += 1
                            }
                            $0.slowest = max($0.slowest, elapsed)
                        }
                    }
                }
            }
        }
    }
}
