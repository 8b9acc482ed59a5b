import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    /// The exit status, or 128 + signal number when a signal ended it.
    public var status: Int32
    /// Everything written to standard output.
    public var standardOutput: [UInt8]
    /// Everything written to standard error.
    public var standardError: [UInt8]
    /// Standard error as text.
    public var errorText: String { String(decoding: standardError, as: UTF8.self) }
}

/// How a process ended, as `waitpid` reports it: tests require a clean `exit(0)`, or a failure.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    /// It called `exit` with this code.
    case exited(Int32)
    /// This signal ended it.
    case signalled(Int32)

    /// Decodes a `waitpid` status.
    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// The shell's number for it: the exit code, or 128 + the signal.
    public var code: Int32 {
        switch self {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        }
    }

    /// How it reads in a failure message.
    public var description: String {
        switch self {
        case .exited(let code): "exit code \(code)"
        case .signalled(let signal): "signal \(signal)"
        }
    }
}

/// Where a child's standard input comes from.
public enum ProcessInput: Sendable {
    /// These bytes, then end of file.
    case bytes([UInt8])
    /// `/dev/null`.
    case null
    /// An open descriptor of ours (e.g. a pseudo-terminal), duplicated onto fd 0.
    case descriptor(Int32)
}

/// Starts programs with an exact, ordered environment (posix_spawn, no shell) and bounded
/// waits: nothing here can hang a test for longer than its timeout.
public enum ProcessRunner {
    /// Runs `executable` to completion, feeding `input` and collecting both outputs at once
    /// (so a child echoing a large body never deadlocks on a full pipe). Kills it with
    /// `SIGKILL` and throws after `timeout`.
    public static func run(
        _ executable: String,
        arguments: [String] = [],
        environment: [(name: String, value: String)],
        input: ProcessInput = .null,
        timeout: Duration = .seconds(60)
    ) async throws -> ProcessResult {
        try await onDedicatedThread {
            try runBlocking(executable, arguments: arguments, environment: environment, input: input, timeout: timeout)
        }
    }

    static func runBlocking(
        _ executable: String,
        arguments: [String],
        environment: [(name: String, value: String)],
        input: ProcessInput,
        timeout: Duration
    ) throws -> ProcessResult {
        signal(SIGPIPE, SIG_IGN)
        let stdinPipe = try makePipe()
        let stdoutPipe = try makePipe()
        let stderrPipe = try makePipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        switch input {
        case .bytes: posix_spawn_file_actions_adddup2(&actions, stdinPipe.read, 0)
        case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, 2)
        let pid: pid_t
        do {
            pid = try spawn(executable, arguments: arguments, environment: environment, actions: &actions)
        } catch {
            for fd in [
                stdinPipe.read, stdinPipe.write, stdoutPipe.read, stdoutPipe.write, stderrPipe.read, stderrPipe.write,
            ] {
                close(fd)
            }
            throw error
        }
        close(stdinPipe.read)
        close(stdoutPipe.write)
        close(stderrPipe.write)
        var body: [UInt8] = []
        if case .bytes(let bytes) = input { body = bytes }
        let deadline = ContinuousClock.now + timeout
        let outputs: [[UInt8]]
        do {
            outputs = try IOPump.run(
                writing: (stdinPipe.write, body, true),
                reading: [stdoutPipe.read, stderrPipe.read],
                deadline: deadline
            )
        } catch {
            kill(pid, SIGKILL)
            _ = waitForExit(pid, until: ContinuousClock.now + .seconds(5))
            throw TransportError("\(executable): \(error)")
        }
        guard let status = waitForExit(pid, until: deadline) else {
            kill(pid, SIGKILL)
            _ = waitForExit(pid, until: ContinuousClock.now + .seconds(5))
            throw TransportError("\(executable) did not exit within \(timeout)")
        }
        return ProcessResult(status: status.code, standardOutput: outputs[0], standardError: outputs[1])
    }

    /// Starts a long-running program (a web server) with its outputs appended to `logFile`.
    public static func start(
        _ executable: String,
        arguments: [String] = [],
        environment: [(name: String, value: String)] = ProcessRunner.inheritedEnvironment,
        logFile: String
    ) throws -> RunningProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let pid = try spawn(
            executable,
            arguments: arguments,
            environment: environment,
            actions: &actions,
            newProcessGroup: true
        )
        return RunningProcess(pid: pid, executable: executable, logFile: logFile)
    }

    /// This process's environment, in order.
    public static var inheritedEnvironment: [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                pairs.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
            }
            entry += 1
        }
        return pairs
    }

    /// This process's environment, in order, with `overrides` (sorted by name) in place of the
    /// variables of the same names: a child that needs a few variables set, and the rest as ours.
    public static func inheritedEnvironment(overriding overrides: [String: String]) -> [(name: String, value: String)] {
        inheritedEnvironment.filter { overrides[$0.name] == nil }
            + overrides.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    }

    static func spawn(
        _ executable: String,
        arguments: [String],
        environment: [(name: String, value: String)],
        actions: inout posix_spawn_file_actions_t,
        newProcessGroup: Bool = false
    ) throws -> pid_t {
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.name)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with default signal handling even though tests ignore SIGPIPE (and
        // whatever ignores SIGTERM or SIGINT in the test runner).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if newProcessGroup {
            // Its own process group (numbered by its PID), so stopping it also stops the
            // children it forked (fcgiwrap's workers, CGI programs still running).
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw TransportError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Waits for `pid` until `deadline`; how it ended, or nil. `.exited(-1)` when it cannot be
    /// waited for (not our child, or already reaped).
    static func waitForExit(_ pid: pid_t, until deadline: ContinuousClock.Instant) -> ExitStatus? {
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return ExitStatus(waitStatus: status) }
            if result < 0, errno != EINTR { return .exited(-1) }
            if ContinuousClock.now >= deadline { return nil }
            usleep(2000)
        }
    }

    static func makePipe() throws -> (read: Int32, write: Int32) {
        // pipe2 (atomic O_CLOEXEC, so no child started meanwhile inherits the pipe) is hidden
        // by Glibc's module map; look it up.
        typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
        guard let symbol = dlsym(nil, "pipe2") else { throw TransportError("the C library has no pipe2") }
        var fds: [Int32] = [0, 0]
        guard unsafeBitCast(symbol, to: Pipe2.self)(&fds, O_CLOEXEC) == 0 else {
            throw TransportError("pipe2 failed: errno \(errno)")
        }
        return (fds[0], fds[1])
    }
}

/// A program started by ``ProcessRunner/start(_:arguments:environment:logFile:)``, in its own
/// process group; stopped by PID (its process group's ID), children included. Every wait is bounded.
public final class RunningProcess: Sendable {
    /// Its process ID.
    public let pid: pid_t
    /// What was started.
    public let executable: String
    /// Where its standard output and error go.
    public let logFile: String
    private let exitStatus = Mutex<ExitStatus?>(nil)

    init(pid: pid_t, executable: String, logFile: String) {
        self.pid = pid
        self.executable = executable
        self.logFile = logFile
    }

    /// How it ended, or nil while it runs. Reaps it once it exited; the one place that does,
    /// so concurrent callers all see the same status.
    func reap() -> ExitStatus? {
        exitStatus.withLock { status in
            if status == nil { status = ProcessRunner.waitForExit(pid, until: .now) }
            return status
        }
    }

    /// Whether it is still running.
    public var isRunning: Bool { reap() == nil }

    /// Sends `signal` to it (only to it, and only while it runs) without waiting.
    public func send(signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits up to `timeout` for it to end; how it ended, or nil if it still runs.
    public func waitForExit(timeout: Duration) async -> ExitStatus? {
        _ = await poll(timeout: timeout, interval: .milliseconds(10)) { reap() != nil }
        return reap()
    }

    /// Sends `signal` (`SIGTERM` by default) to it, waits up to `timeout`, then `SIGKILL`s it;
    /// finally `SIGKILL`s whatever is left of its process group. Returns how it ended.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async -> ExitStatus? {
        send(signal: signal)
        var status = await waitForExit(timeout: timeout)
        if status == nil {
            send(signal: SIGKILL)
            status = await waitForExit(timeout: .seconds(5))
        }
        kill(-pid, SIGKILL)
        return status
    }

    /// The log's contents (its last 4 KiB), for failure messages.
    public var logTail: String {
        guard let data = FileManager.default.contents(atPath: logFile) else { return "" }
        return String(decoding: data.suffix(4096), as: UTF8.self)
    }
}
