import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A process the tests started (by default the built `gateway-probe` on a fresh Unix socket),
/// its log, and what `/proc` says about it.
///
/// Only this PID is ever signalled. Every wait is bounded.
public final class ProbeServerProcess: Sendable {
    /// The process id.
    public let pid: pid_t
    /// The Unix socket it listens on (nil for TCP or inherited-socket runs).
    public let socketPath: String?
    /// A private temporary directory holding the socket and the log; removed by ``cleanUp()``.
    public let directory: String
    /// The file its standard output and standard error go to.
    public let logPath: String

    private init(pid: pid_t, socketPath: String?, directory: String, logPath: String) {
        self.pid = pid
        self.socketPath = socketPath
        self.directory = directory
        self.logPath = logPath
    }

    /// Errors starting or waiting for a process.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    // MARK: Starting

    /// Starts `gateway-probe --socket <path> <arguments>` and waits until the socket accepts.
    /// The path defaults to a fresh one in a new temporary directory.
    public static func start(
        arguments: [String] = [],
        environment: [String: String] = [:],
        socketPath: String? = nil,
        waitForSocket: Bool = true
    ) async throws -> ProbeServerProcess {
        let directory = try makeTemporaryDirectory()
        let socket = socketPath ?? directory + "/fcgi.sock"
        let process = try launch(
            executable: try probeExecutable(),
            arguments: ["--socket", socket] + arguments,
            environment: environment,
            directory: directory,
            socketPath: socket
        )
        if waitForSocket {
            do {
                try await process.waitUntilAccepting()
            } catch {
                await process.stop()
                throw Failure(description: "\(error); log:\n\(process.log)")
            }
        }
        return process
    }

    /// Starts any executable with its output going to a fresh log file, in its own process group.
    /// `socketPath` is only recorded (for ``waitUntilAccepting(timeout:)``).
    public static func launch(
        executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        directory: String? = nil,
        socketPath: String? = nil,
        standardInput: String = "/dev/null"
    ) throws -> ProbeServerProcess {
        let directory = try directory ?? makeTemporaryDirectory()
        let logPath = directory + "/server.log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, standardInput, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group (so a terminal's ^C does not hit it) and default signal handling.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        )

        var environ = currentEnvironment()
        for (name, value) in environment { environ[name] = value }
        let argv = [executable] + arguments
        let envp = environ.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStrings(argv) { argvPointers in
            withCStrings(envp) { envPointers in
                posix_spawn(&pid, executable, &actions, &attributes, argvPointers, envPointers)
            }
        }
        guard result == 0 else {
            throw Failure(description: "posix_spawn \(executable) failed: errno \(result)")
        }
        return ProbeServerProcess(pid: pid, socketPath: socketPath, directory: directory, logPath: logPath)
    }

    /// The built `gateway-probe`: `$GATEWAY_PROBE`, else next to the test bundle, else `.build/debug`.
    public static func probeExecutable() throws -> String {
        var candidates: [String] = []
        if let explicit = getenv("GATEWAY_PROBE") { candidates.append(String(cString: explicit)) }
        if let exe = readLink("/proc/self/exe") {
            var directory = exe
            while let slash = directory.lastIndex(of: "/") {
                directory = String(directory[..<slash])
                candidates.append(directory + "/gateway-probe")
                if directory.hasSuffix("/debug") || directory.hasSuffix("/release") || directory.isEmpty { break }
            }
        }
        candidates.append(".build/debug/gateway-probe")
        for candidate in candidates where access(candidate, X_OK) == 0 {
            return candidate
        }
        throw Failure(description: "gateway-probe not found (tried \(candidates)); run `swift build` first")
    }

    // MARK: Waiting

    /// Waits until a connection to the socket succeeds (default: at most 20 s).
    public func waitUntilAccepting(timeout: Duration = .seconds(20)) async throws {
        guard let socketPath else { return }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try reap() {
                throw Failure(description: "server exited (\(status)) before accepting on \(socketPath)")
            }
            if Self.canConnect(toUnixSocket: socketPath) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure(description: "server did not accept on \(socketPath) within \(timeout)")
    }

    /// How a process ended.
    public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): "exit code \(code)"
            case .signalled(let signal): "signal \(signal)"
            }
        }
    }

    private let exitStatus = Mutex<ExitStatus?>(nil)

    /// Collects the exit status if the process has ended (without blocking).
    @discardableResult
    public func reap() throws -> ExitStatus? {
        if let known = exitStatus.withLock({ $0 }) { return known }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == 0 { return nil }
        guard result == pid else { throw Failure(description: "waitpid(\(pid)) failed: errno \(errno)") }
        let exit: ExitStatus =
            (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        exitStatus.withLock { $0 = exit }
        return exit
    }

    /// Waits for the process to end; nil if it is still running after `timeout`.
    public func waitForExit(timeout: Duration) async -> ExitStatus? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = try? reap() { return status }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Whether the process is still running.
    public var isRunning: Bool { (try? reap()) == nil }

    // MARK: Stopping

    /// Sends `signal` to this process only.
    public func signal(_ signal: Int32) {
        guard isRunning else { return }
        kill(pid, signal)
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`; returns how it ended.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) async -> ExitStatus? {
        signal(SIGTERM)
        if let status = await waitForExit(timeout: grace) { return status }
        signal(SIGKILL)
        return await waitForExit(timeout: .seconds(5))
    }

    /// Stops the process if needed and removes its temporary directory (and socket, if in it).
    public func cleanUp() async {
        if isRunning { await stop() }
        if let socketPath, socketPath.hasPrefix(directory + "/") { unlink(socketPath) }
        unlink(logPath)
        rmdir(directory)
    }

    // MARK: Observing

    /// Everything the process logged so far.
    public var log: String {
        guard let file = fopen(logPath, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Resident set size in KiB (`VmRSS` of /proc/PID/status).
    public var residentKiB: Int? {
        guard let status = Self.readFile("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.dropFirst(6).filter { $0.isNumber })
        }
        return nil
    }

    /// Number of open file descriptors (entries of /proc/PID/fd).
    public var openDescriptorCount: Int? { openDescriptors?.count }

    /// The open file descriptors and what they point at (`socket:[…]`, paths, `anon_inode:…`).
    public var openDescriptors: [Int32: String]? {
        guard let directory = opendir("/proc/\(pid)/fd") else { return nil }
        defer { closedir(directory) }
        var result: [Int32: String] = [:]
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let fd = Int32(name) else { continue }
            result[fd] = Self.readLink("/proc/\(pid)/fd/\(name)") ?? "?"
        }
        return result
    }

    // MARK: Helpers

    /// A fresh private directory under /tmp (short, so socket paths fit in `sun_path`).
    public static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/sgw-XXXXXX".utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Failure(description: "mkdtemp failed: errno \(errno)")
        }
        return String(cString: result)
    }

    /// Whether a connection to the Unix socket at `path` succeeds right now.
    public static func canConnect(toUnixSocket path: String) -> Bool {
        connectError(toUnixSocket: path) == 0
    }

    /// 0 when a connection to `path` succeeds, else the errno of `connect` (e.g. ECONNREFUSED).
    public static func connectError(toUnixSocket path: String) -> Int32 {
        switch PortAllocator.connect(unixSocket: path) {
        case .success(let fd):
            close(fd)
            return 0
        case .failure(let error):
            return error.code
        }
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
