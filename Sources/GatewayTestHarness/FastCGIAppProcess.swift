import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A FastCGI application the tests started as a process of its own (the built `gateway-probe`,
/// `hello`, `authorizer-example` …), listening on a Unix socket (`--socket PATH`, or the socket
/// spawn-fcgi hands it on fd 0) or on a loopback TCP port. It exists so that tests meet the real
/// executable as a web server does: they signal it, stop or kill it, start it again on the same
/// address, and read its log and what `/proc` says about it.
///
/// Only its PID is signalled (when it is stopped, also what is left of its process group);
/// every wait is bounded.
public final class FastCGIAppProcess: Sendable {
    /// How the application gets its listening socket: the ways deployments start one.
    public enum Launch: Sendable {
        /// `app --socket PATH`: the application binds the socket itself.
        case socketFlag
        /// `spawn-fcgi -n -s PATH -M 0660 -- app`: spawn-fcgi binds, then execs the application
        /// with the listening socket on fd 0.
        case spawnFCGI
        /// `app --port N` on 127.0.0.1 (mod_authnz_fcgi only speaks TCP).
        case tcp(port: Int)
    }

    /// The program, so that a test can start a successor of the same kind.
    public let executable: String
    /// The Unix socket it listens on, for clients to connect to ("" for TCP).
    public let socketPath: String
    /// How it was started, so that ``restart(timeout:)`` starts it the same way.
    public let launch: Launch
    /// Arguments after the address flags (e.g. `--socket-group`), kept for ``restart(timeout:)``.
    public let extraArguments: [String]
    /// Variables set on top of the test process's environment (e.g. `FCGI_WEB_SERVER_ADDRS`),
    /// kept for ``restart(timeout:)``.
    public let environment: [String: String]
    /// Where its standard output and error go (appended across restarts), read by ``log``.
    public let logFile: String
    /// The directory ``startProbe(_:environment:socketPath:launch:waitUntilReady:)`` made.
    private let directory: TemporaryDirectory?
    private let current: Mutex<RunningProcess?>

    private init(
        executable: String,
        socketPath: String,
        launch: Launch,
        extraArguments: [String],
        environment: [String: String],
        logFile: String,
        directory: TemporaryDirectory?
    ) {
        self.executable = executable
        self.socketPath = socketPath
        self.launch = launch
        self.extraArguments = extraArguments
        self.environment = environment
        self.logFile = logFile
        self.directory = directory
        self.current = Mutex(nil)
    }

    // MARK: Starting

    /// Starts `executable` and, unless `waitUntilReady` is false, waits (at most `timeout`)
    /// until it accepts connections: a test's requests then never race its start-up. Throws,
    /// with the log's tail, when it exits or does not listen in time.
    public static func start(
        _ executable: String,
        socketPath: String,
        launch: Launch = .socketFlag,
        extraArguments: [String] = [],
        environment: [String: String] = [:],
        logFile: String,
        waitUntilReady: Bool = true,
        timeout: Duration = .seconds(30)
    ) async throws -> FastCGIAppProcess {
        let app = FastCGIAppProcess(
            executable: executable,
            socketPath: socketPath,
            launch: launch,
            extraArguments: extraArguments,
            environment: environment,
            logFile: logFile,
            directory: nil
        )
        try await app.startProcess(waitUntilReady: waitUntilReady, timeout: timeout)
        return app
    }

    /// Starts the built `gateway-probe` with its log, and its socket unless `socketPath` is
    /// given, in a fresh directory under /tmp (short, so that the socket path fits `sun_path`),
    /// which ``cleanUp(timeout:)`` removes: the one-line start of the server-level tests.
    public static func startProbe(
        _ extraArguments: [String] = [],
        environment: [String: String] = [:],
        socketPath: String? = nil,
        launch: Launch = .socketFlag,
        waitUntilReady: Bool = true
    ) async throws -> FastCGIAppProcess {
        let executable = try BuiltProducts.executable(named: "gateway-probe")
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        let socket: String
        if case .tcp = launch {
            socket = ""
        } else {
            socket = socketPath ?? directory.path + "/fcgi.sock"
        }
        let app = FastCGIAppProcess(
            executable: executable,
            socketPath: socket,
            launch: launch,
            extraArguments: extraArguments,
            environment: environment,
            logFile: directory.path + "/server.log",
            directory: directory
        )
        do {
            try await app.startProcess(waitUntilReady: waitUntilReady, timeout: .seconds(30))
        } catch {
            directory.remove()
            throw error
        }
        return app
    }

    /// Starts it again (after ``stop(timeout:)`` or ``kill()``) on the same address, to test
    /// what a web server does when its application comes back.
    public func restart(timeout: Duration = .seconds(30)) async throws {
        try await startProcess(waitUntilReady: true, timeout: timeout)
    }

    private func startProcess(waitUntilReady: Bool, timeout: Duration) async throws {
        let environment = ProcessRunner.inheritedEnvironment(overriding: environment)
        let process: RunningProcess
        switch launch {
        case .socketFlag:
            process = try ProcessRunner.start(
                executable,
                arguments: ["--socket", socketPath] + extraArguments,
                environment: environment,
                logFile: logFile
            )
        case .spawnFCGI:
            let spawner = try RequiredTool.locate("spawn-fcgi")
            unlink(socketPath)
            process = try ProcessRunner.start(
                spawner,
                arguments: ["-n", "-s", socketPath, "-M", "0660", "--", executable] + extraArguments,
                environment: environment,
                logFile: logFile
            )
        case .tcp(let port):
            process = try ProcessRunner.start(
                executable,
                arguments: ["--port", String(port)] + extraArguments,
                environment: environment,
                logFile: logFile
            )
        }
        current.withLock { $0 = process }
        guard waitUntilReady else { return }
        let ready = await poll(timeout: timeout) { !process.isRunning || isAccepting }
        let exit = process.reap()
        guard ready, exit == nil else {
            await process.stop(signal: SIGKILL)
            let failure = exit.map { "exited (\($0)) before it listened" } ?? "did not listen within \(timeout)"
            throw TransportError("\(executable) \(failure).\n\(logTail)")
        }
    }

    /// Whether a connection to its address is accepted right now.
    private var isAccepting: Bool {
        switch launch {
        case .tcp(let port): PortAllocator.isListening(port: port)
        case .socketFlag, .spawnFCGI: PortAllocator.isListening(unixSocket: socketPath)
        }
    }

    // MARK: Signalling and stopping

    /// The process ID of the running instance (-1 before it started), for `/proc` and messages.
    public var pid: pid_t { current.withLock { $0?.pid ?? -1 } }

    /// Whether the current instance still runs: a test checks that nothing it sent crashed it.
    public var isRunning: Bool { current.withLock { $0 }?.isRunning ?? false }

    /// Sends `signal` to the running instance without waiting, to test what the application
    /// does on `SIGTERM`, or how a web server copes with a `SIGKILL`ed one.
    public func send(signal: Int32) {
        current.withLock { $0 }?.send(signal: signal)
    }

    /// Waits up to `timeout` for the current instance to exit; how it ended, or nil if it
    /// still runs.
    public func waitForExit(timeout: Duration) async -> ExitStatus? {
        await current.withLock { $0 }?.waitForExit(timeout: timeout)
    }

    /// `SIGTERM` (graceful: requests in flight finish), waits up to `timeout`, then `SIGKILL`;
    /// returns how it ended, so a test can require a clean exit.
    @discardableResult
    public func stop(timeout: Duration = .seconds(10)) async -> ExitStatus? {
        await current.withLock { $0 }?.stop(signal: SIGTERM, timeout: timeout)
    }

    /// `SIGKILL`, as a crash would end it; the socket file stays behind.
    public func kill() async {
        await current.withLock { $0 }?.stop(signal: SIGKILL, timeout: .seconds(5))
    }

    /// Stops it whatever state a test left it in (`SIGKILL` after `timeout`) and removes the
    /// directory ``startProbe(_:environment:socketPath:launch:waitUntilReady:)`` made.
    public func cleanUp(timeout: Duration = .seconds(5)) async {
        await stop(timeout: timeout)
        directory?.remove()
    }

    /// Starts an application with `start`, runs `body`, and stops the application whatever
    /// happens, so that no test leaves one running.
    public static func with<T>(
        _ start: () async throws -> FastCGIAppProcess,
        _ body: (FastCGIAppProcess) async throws -> T
    ) async throws -> T {
        try await withStarted(start, stop: { await $0.stop() }, body)
    }

    // MARK: Observing

    /// Everything it logged (all instances), for assertions on its messages.
    public var log: String {
        FileManager.default.contents(atPath: logFile).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The last 4 KiB of its log, for failure messages.
    public var logTail: String { String(log.suffix(4096)) }

    /// Resident memory of the running instance from `/proc/PID/status`, in bytes: current
    /// (`VmRSS`) and peak (`VmHWM`); what tests check to see that bodies stream. Nil when it
    /// is not running.
    public var memory: (resident: Int, peak: Int)? {
        let pid = self.pid
        guard pid > 0, let data = FileManager.default.contents(atPath: "/proc/\(pid)/status") else { return nil }
        var resident: Int?
        var peak: Int?
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { continue }
            if fields[0] == "VmRSS:" { resident = kilobytes * 1024 }
            if fields[0] == "VmHWM:" { peak = kilobytes * 1024 }
        }
        guard let resident, let peak else { return nil }
        return (resident, peak)
    }

    /// Its open file descriptors and what each points at (`socket:[…]`, a path,
    /// `anon_inode:…`), from `/proc/PID/fd`: how tests see that it leaks no connection. Nil
    /// when it is not running.
    public var openDescriptors: [Int32: String]? {
        let pid = self.pid
        let directory = "/proc/\(pid)/fd"
        guard pid > 0, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        var result: [Int32: String] = [:]
        for name in names {
            guard let fd = Int32(name) else { continue }
            result[fd] = (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name)) ?? "?"
        }
        return result
    }
}
