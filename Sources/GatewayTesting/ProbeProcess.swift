import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-gateway application (gateway-probe, hello, authorizer-example …) the tests started
/// as a FastCGI server: with `--socket PATH`, with `--port N`, or through spawn-fcgi (the
/// listening socket on fd 0). It can be stopped, killed and started again on the same address.
public final class FastCGIAppProcess: Sendable {
    /// How the application gets its listening socket.
    public enum Launch: Sendable {
        /// `app --socket PATH`.
        case socketFlag
        /// `spawn-fcgi -n -s PATH -- app`: spawn-fcgi binds, then execs the app with the socket on fd 0.
        case spawnFCGI
        /// `app --port N` on 127.0.0.1 (mod_authnz_fcgi only speaks TCP).
        case tcp(port: Int)
    }

    /// The program.
    public let executable: String
    /// The Unix socket it listens on (empty for TCP).
    public let socketPath: String
    /// How it was started.
    public let launch: Launch
    /// Extra arguments after the address flags.
    public let extraArguments: [String]
    /// Where its standard output and error go (appended across restarts).
    public let logFile: String
    private let current: Mutex<RunningProcess?>

    private init(executable: String, socketPath: String, launch: Launch, extraArguments: [String], logFile: String) {
        self.executable = executable
        self.socketPath = socketPath
        self.launch = launch
        self.extraArguments = extraArguments
        self.logFile = logFile
        self.current = Mutex(nil)
    }

    /// Starts `executable` and waits (at most `timeout`) until it accepts connections.
    public static func start(
        _ executable: String,
        socketPath: String,
        launch: Launch = .socketFlag,
        extraArguments: [String] = [],
        logFile: String,
        timeout: Duration = .seconds(30)
    ) async throws -> FastCGIAppProcess {
        let app = FastCGIAppProcess(
            executable: executable,
            socketPath: socketPath,
            launch: launch,
            extraArguments: extraArguments,
            logFile: logFile
        )
        try await app.startProcess(timeout: timeout)
        return app
    }

    /// Starts it again (after ``stop()`` or ``kill()``) on the same address.
    public func restart(timeout: Duration = .seconds(30)) async throws {
        try await startProcess(timeout: timeout)
    }

    private func startProcess(timeout: Duration) async throws {
        let process: RunningProcess
        switch launch {
        case .socketFlag:
            process = try ProcessRunner.start(
                executable,
                arguments: ["--socket", socketPath] + extraArguments,
                logFile: logFile
            )
        case .spawnFCGI:
            let spawner = try RequiredTool.locate("spawn-fcgi")
            unlink(socketPath)
            process = try ProcessRunner.start(
                spawner,
                arguments: ["-n", "-s", socketPath, "-M", "0660", "--", executable] + extraArguments,
                logFile: logFile
            )
        case .tcp(let port):
            process = try ProcessRunner.start(
                executable,
                arguments: ["--port", String(port)] + extraArguments,
                logFile: logFile
            )
        }
        current.withLock { $0 = process }
        let launch = self.launch
        let socketPath = self.socketPath
        let ready = await poll(timeout: timeout) {
            guard process.isRunning else { return true }
            switch launch {
            case .tcp(let port): return PortAllocator.isListening(port: port)
            case .socketFlag, .spawnFCGI: return UnixSocketProbe.accepts(socketPath)
            }
        }
        guard ready, process.isRunning else {
            await process.stop(signal: SIGKILL)
            throw TransportError("\(executable) did not start listening within \(timeout).\n\(logTail)")
        }
    }

    /// The process ID of the running instance.
    public var pid: pid_t { current.withLock { $0?.pid ?? -1 } }

    /// Whether the current instance still runs.
    public var isRunning: Bool { current.withLock { $0 }?.isRunning ?? false }

    /// SIGTERM (graceful: in-flight requests finish), waits up to `timeout`, then SIGKILL.
    public func stop(timeout: Duration = .seconds(10)) async {
        guard let process = current.withLock({ $0 }) else { return }
        await process.stop(signal: SIGTERM, timeout: timeout)
    }

    /// Sends `signal` to the running instance without waiting for it to exit.
    public func send(signal: Int32) {
        let pid = self.pid
        if pid > 0, isRunning { Glibc.kill(pid, signal) }
    }

    /// Waits up to `timeout` for the running instance to exit; whether it did.
    public func waitForExit(timeout: Duration) async -> Bool {
        await poll(timeout: timeout) { !isRunning }
    }

    /// SIGKILL, as a crash would end it; the socket file stays behind.
    public func kill() async {
        guard let process = current.withLock({ $0 }) else { return }
        await process.stop(signal: SIGKILL, timeout: .seconds(5))
    }

    /// Everything it logged (all instances).
    public var log: String {
        FileManager.default.contents(atPath: logFile).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The last 4 KiB of its log, for failure messages.
    public var logTail: String { String(log.suffix(4096)) }

    /// Resident memory of the running instance from `/proc/PID/status`, in bytes: current
    /// (`VmRSS`) and peak (`VmHWM`). Nil when it is not running.
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

    /// Starts `app`, runs `body`, and stops it whatever happens.
    public static func with<T>(
        _ start: () async throws -> FastCGIAppProcess,
        _ body: (FastCGIAppProcess) async throws -> T
    ) async throws -> T {
        let app = try await start()
        do {
            let result = try await body(app)
            await app.stop()
            return result
        } catch {
            await app.stop()
            throw error
        }
    }
}

/// Connects to Unix sockets, to see whether a server listens there.
public enum UnixSocketProbe {
    /// Whether a connection to `path` is accepted (the connection is closed at once).
    public static func accepts(_ path: String) -> Bool {
        PortAllocator.isListening(unixSocket: path)
    }
}
