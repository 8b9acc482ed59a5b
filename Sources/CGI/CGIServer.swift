public import Gateway
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs an `GatewayApplication` once as a CGI/1.1 process (RFC 3875).
///
/// The process environment becomes the `Environ`'s variables (in environment order),
/// standard input the request body (never read past `CONTENT_LENGTH`; no `CONTENT_LENGTH`
/// means no body), standard error the error log, and the response goes to standard output
/// as a CGI response (`Status:` line, headers, blank line, body) through `ResponseDriver`,
/// written with `write(2)` as the application produces it: nothing is buffered in between.
///
/// Everything runs on the caller's executor: no task is created, so a CGI process never
/// starts the global executor's threads. This module uses the C library only (no
/// Foundation), which keeps start-up near a C program's.
public enum CGIServer {
    /// Serves the one request this process was started for and returns the exit status.
    ///
    /// Returns 0 when a response was sent, including the `500` sent for an application that
    /// threw before its response began; 1 when the response was cut short (the application
    /// threw while streaming) or standard output failed (the web server went away); 2 when
    /// the process was started by hand from a terminal (no `REQUEST_METHOD`, standard input
    /// a terminal), after printing how to run it. `SIGPIPE` is ignored so a closed standard
    /// output shows up as a write error instead of killing the process.
    ///
    /// `HTTP_PROXY` (a client's `Proxy:` header) is removed from the process environment
    /// before the application runs (httpoxy, CVE-2016-5385: HTTP libraries and child
    /// processes would take it as their proxy); it stays readable in the `Environ`.
    ///
    /// `logger` is the base of the request's `environ.logger` (which adds the request id,
    /// method and path). Standard output is the response, so it must not log there.
    nonisolated(nonsending) public static func run(
        _ application: some GatewayApplication,
        maxBodyBytes: Int = defaultMaxBodyBytes,
        logger: Logger = Environ.discardingLogger
    ) async -> Int32 {
        if getenv("REQUEST_METHOD") == nil, isatty(0) != 0 {
            let name = CommandLine.arguments.first ?? "app"
            writeAll(2, Array(usage(programName: name).utf8))
            return 2
        }
        let variables = takeProcessEnvironment()
        return await run(application, variables: variables, maxBodyBytes: maxBodyBytes, logger: logger)
    }

    /// The body limit when none is configured: 1 GiB, as for FastCGI.
    public static let defaultMaxBodyBytes = 1 << 30

    /// Answers the request with a `500` and writes `problem` on standard error, for a
    /// configuration value (a `GATEWAY_*` variable) the process cannot serve with. CGI has no
    /// start at which to refuse it, so the request gets a clean `500` instead of a malformed
    /// response; returns the exit status, 64 (`EX_USAGE`), as a FastCGI start would.
    public static func answerMisconfigured(_ problem: String, output: Int32 = 1, error: Int32 = 2) -> Int32 {
        writeAll(error, Array("swift-gateway: \(problem); answering 500\n".utf8))
        let answer = ResponseDriver.internalServerError
        writeAll(output, answer.head + answer.body)
        return 64
    }

    /// Serves one request with explicit variables and file descriptors: what ``run(_:maxBodyBytes:logger:)`` does
    /// after reading its environment, for tests and for programs that prepare their own.
    nonisolated(nonsending) public static func run(
        _ application: some GatewayApplication,
        variables: CGIVariables,
        input: Int32 = 0,
        output: Int32 = 1,
        error: Int32 = 2,
        maxBodyBytes: Int = defaultMaxBodyBytes,
        logger: Logger = Environ.discardingLogger
    ) async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let errors = ErrorStream { message in writeAll(error, Array(message.utf8)) }
        var environ = Environ(
            variables: variables,
            errors: errors,
            logger: logger,
            multithread: false,
            multiprocess: true,
            runOnce: true
        )
        let length = environ.contentLength ?? 0
        let body = length > 0 ? DescriptorBodySource(fd: input, length: length) : nil
        let answering: any GatewayApplication
        if length > maxBodyBytes {
            // Refused before any of it is read, and without running the application.
            errors.write(
                "swift-gateway: request body of \(length) bytes over the limit of \(maxBodyBytes), answering 413"
            )
            environ.input = .empty
            answering = ClosureApplication { _ in throw RequestBodyTooLarge(maximum: maxBodyBytes) }
        } else {
            if let body { environ.input = GatewayRequestBody(source: body, contentLength: length) }
            answering = application
        }
        var writer = DescriptorOutput(fd: output, input: length > maxBodyBytes ? nil : body)
        let outcome = await ResponseDriver.run(answering, environ: environ, output: &writer)
        if case .outputFailed = outcome {
            errors.write("swift-gateway: could not write the response to standard output: \(errorName(writer.failure))")
        } else {
            // mod_cgid's standard input and output are one socket: a process that exits with
            // body bytes unread makes it reset, and Apache loses the response it was reading.
            body?.discardRemaining()
        }
        return outcome.exitStatus
    }

    /// The short help printed when the program is started from a terminal.
    public static func usage(programName: String) -> String {
        """
        \(programName): a web application speaking CGI and FastCGI; it answers requests from a web server.
          CGI:      let Apache (mod_cgid: ScriptAlias /app \(programName)) or nginx + fcgiwrap run it per request.
          FastCGI:  spawn-fcgi -s /run/app.sock -- \(programName), or \(programName) --socket /run/app.sock,
                    then point nginx's fastcgi_pass or Apache's mod_proxy_fcgi at the socket.
          To try one request by hand: REQUEST_METHOD=GET PATH_INFO=/ \(programName) < /dev/null

        """
    }

    /// The process environment as CGI variables, after which `HTTP_PROXY` is removed from the
    /// process environment (httpoxy: it is the client's `Proxy:` header, never a proxy setting).
    /// What ``run(_:maxBodyBytes:logger:)`` does first; public for programs that prepare their own run.
    public static func takeProcessEnvironment() -> CGIVariables {
        let variables = processEnvironment()
        unsetenv("HTTP_PROXY")
        return variables
    }

    /// The process environment as CGI variables, in order, without decoding anything.
    static func processEnvironment() -> CGIVariables {
        var storage: [UInt8] = []
        var layout: [UInt32] = []
        storage.reserveCapacity(4096)
        var entry: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = environ
        while let pointer = entry.pointee {
            let length = strlen(pointer)
            pointer.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                let buffer = UnsafeBufferPointer(start: bytes, count: length)
                guard let equals = buffer.firstIndex(of: UInt8(ascii: "=")), equals > 0 else { return }
                let start = UInt32(storage.count)
                storage.append(contentsOf: buffer)
                layout.append(start)
                layout.append(UInt32(equals))
                layout.append(start + UInt32(equals) + 1)
                layout.append(UInt32(length - equals - 1))
            }
            entry += 1
        }
        return CGIVariables(storage: storage, layout: layout)
    }
}

extension ResponseOutcome {
    /// The CGI process's exit status: 0 when a response was sent (a `500` or `413` included),
    /// 1 when it was cut short after its head or could not be written. Nothing more is
    /// written after a cut: the web server sees the script fail mid-body.
    fileprivate var exitStatus: Int32 {
        switch self {
        case .completed, .applicationFailed(headSent: false): 0
        case .applicationFailed(headSent: true), .outputFailed: 1
        }
    }
}

/// Reads the request body from a file descriptor in chunks of up to 64 KiB, never asking
/// for more than the bytes `CONTENT_LENGTH` announced (so it never blocks on data that will
/// not come).
///
/// Web servers running CGI (Apache's mod_cgid, fcgiwrap) write the whole request body to the
/// program before they read any of its output. An application that writes its response before
/// reading its whole body (an echo, a streaming transform) would deadlock them once both pipes
/// filled. So while a response write cannot proceed and body bytes are waiting,
/// ``spoolNextChunk()`` reads them into a spool (the first 1 MiB in memory, the rest in an
/// unlinked temporary file) and later reads are served from there. Only bytes the web server
/// pushes while the output is blocked are spooled: an application that never reads its body
/// and answers briefly costs nothing, and the spool never exceeds the declared length, which
/// the body limit bounds.
final class DescriptorBodySource: RequestBodySource, @unchecked Sendable {
    // Only the one task serving the request reads the body and writes the response, one
    // call at a time, so the state needs no lock.
    let fd: Int32
    private let length: Int
    /// Bytes read from `fd` so far.
    private var received = 0
    /// The spool: bytes read ahead for the application, in memory and then in `spoolFile`.
    private var memory: [UInt8] = []
    private var memoryOffset = 0
    private var spoolFile: Int32 = -1
    private var fileWritten = 0
    private var fileRead = 0
    /// The error that ended spooling, thrown once the application reached it.
    private var pendingError: RequestBodyIncomplete?
    static let memoryLimit = 1 << 20
    static let chunkSize = 65536

    init(fd: Int32, length: Int) {
        self.fd = fd
        self.length = length
    }

    deinit {
        if spoolFile >= 0 { close(spoolFile) }
    }

    /// Whether every body byte was read from the descriptor (or reading it failed).
    var isDrained: Bool { received == length || pendingError != nil }

    nonisolated(nonsending) func read() async throws -> [UInt8]? {
        try nextChunk()
    }

    func nextChunk() throws -> [UInt8]? {
        if memoryOffset < memory.count {
            let end = min(memory.count, memoryOffset + Self.chunkSize)
            defer {
                memoryOffset = end
                if end == memory.count {
                    memory = []
                    memoryOffset = 0
                }
            }
            return Array(memory[memoryOffset..<end])
        }
        if fileRead < fileWritten {
            let wanted = min(Self.chunkSize, fileWritten - fileRead)
            let chunk = try readChunk(from: spoolFile, count: wanted, at: fileRead)
            fileRead += chunk.count
            return chunk
        }
        if let pendingError { throw pendingError }
        let wanted = min(Self.chunkSize, length - received)
        guard wanted > 0 else { return nil }
        let chunk = try readChunk(from: fd, count: wanted, at: nil)
        received += chunk.count
        return chunk
    }

    /// Reads the next chunk of the body from the descriptor into the spool (call when the
    /// descriptor is readable). A failure is kept and thrown once the application reaches it.
    func spoolNextChunk() {
        guard received < length, pendingError == nil else { return }
        let chunk: [UInt8]
        do {
            chunk = try readChunk(from: fd, count: min(Self.chunkSize, length - received), at: nil)
        } catch {
            pendingError = error
            return
        }
        received += chunk.count
        if memoryOffset > 0 {
            // What the application already read leaves memory, so the in-memory part of the
            // spool stays within `memoryLimit` however reads and writes alternate.
            memory.removeFirst(memoryOffset)
            memoryOffset = 0
        }
        if spoolFile < 0, memory.count + chunk.count <= Self.memoryLimit {
            memory += chunk
            return
        }
        if spoolFile < 0 {
            spoolFile = openTemporaryFile()
            if spoolFile < 0 {
                pendingError = RequestBodyIncomplete(
                    reason: .readFailed(errno: errno),
                    received: received,
                    expected: length
                )
                return
            }
        }
        let failure = chunk.withUnsafeBytes { bytes in
            writeAll(spoolFile, bytes, UnsafeRawBufferPointer(start: nil, count: 0), offset: fileWritten)
        }
        if failure != 0 {
            pendingError = RequestBodyIncomplete(
                reason: .readFailed(errno: failure),
                received: received,
                expected: length
            )
            return
        }
        fileWritten += chunk.count
    }

    /// Reads and drops what is left of the body on the descriptor (nothing is kept), so the
    /// process exits with its input consumed; stops at the end of the input or an error.
    func discardRemaining() {
        guard pendingError == nil else { return }
        var buffer = [UInt8](repeating: 0, count: Self.chunkSize)
        while received < length {
            let wanted = min(buffer.count, length - received)
            let count = buffer.withUnsafeMutableBytes { readDescriptor(fd, $0.baseAddress, wanted) }
            if count > 0 {
                received += count
            } else if count < 0, errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    /// One `read(2)` (or `pread(2)` at `offset`) of up to `count` bytes, retried on `EINTR`;
    /// throws when it fails or finds the end of the input early.
    private func readChunk(from fd: Int32, count: Int, at offset: Int?) throws(RequestBodyIncomplete) -> [UInt8] {
        var failure: Int32 = 0
        let chunk = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            while true {
                let result =
                    offset.map { pread(fd, buffer.baseAddress, count, off_t($0)) }
                    ?? readDescriptor(fd, buffer.baseAddress, count)
                if result >= 0 {
                    initialized = result
                    return
                }
                if errno != EINTR {
                    failure = errno
                    initialized = 0
                    return
                }
            }
        }
        guard failure == 0, !chunk.isEmpty else {
            throw RequestBodyIncomplete(
                reason: failure == 0 ? .endOfInput : .readFailed(errno: failure),
                received: received,
                expected: length
            )
        }
        return chunk
    }

    /// A new, already unlinked file in `$TMPDIR` (or `/tmp`).
    private func openTemporaryFile() -> Int32 {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((directory + "/swift-gateway-body-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        if fd >= 0 { unlink(template) }
        return fd
    }
}

/// Writes the CGI response to a file descriptor (standard output) as it comes: head and
/// body go out together in one `writev(2)` when possible, partial writes and `EINTR` are
/// retried, nothing is buffered.
struct DescriptorOutput: ResponseOutput {
    let fd: Int32
    /// The request body, spooled while a write waits (see ``DescriptorBodySource``).
    let input: DescriptorBodySource?
    /// The `errno` of the write that failed.
    var failure: Int32 = 0

    nonisolated(nonsending) mutating func send(head: [UInt8], body: [UInt8], isLast: Bool) async throws {
        let result = head.withUnsafeBytes { head in
            body.withUnsafeBytes { body in
                if let input, !input.isDrained { return writeAllWhileSpooling(head, body, input) }
                return writeAll(fd, head, body)
            }
        }
        if result != 0 {
            failure = result
            throw CGIOutputError(errorNumber: result)
        }
    }
}

extension DescriptorOutput {
    /// `writeAll` for while body bytes are still unread: waits for the output to take bytes
    /// or the input to offer them, spools what the input offers, and writes at most
    /// `PIPE_BUF` bytes whenever the output is writable (a write that size never blocks a
    /// pipe or socket that polled writable). Once the body is drained, the rest goes out in
    /// full-size writes.
    func writeAllWhileSpooling(
        _ first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer,
        _ input: DescriptorBodySource
    ) -> Int32 {
        var firstDone = 0
        var secondDone = 0
        while firstDone + secondDone < first.count + second.count, !input.isDrained {
            var descriptors = [
                pollfd(fd: fd, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: input.fd, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&descriptors, 2, -1) < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if descriptors[1].revents != 0 { input.spoolNextChunk() }
            let output = descriptors[0].revents
            if output & Int16(POLLOUT) == 0 {
                if output & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return EPIPE }
                continue
            }
            let fromFirst = min(first.count - firstDone, Int(PIPE_BUF))
            let fromSecond = min(second.count - secondDone, Int(PIPE_BUF) - fromFirst)
            let failure = writeAll(
                fd,
                UnsafeRawBufferPointer(rebasing: first[firstDone..<firstDone + fromFirst]),
                UnsafeRawBufferPointer(rebasing: second[secondDone..<secondDone + fromSecond])
            )
            if failure != 0 { return failure }
            firstDone += fromFirst
            secondDone += fromSecond
        }
        return writeAll(
            fd,
            UnsafeRawBufferPointer(rebasing: first[firstDone...]),
            UnsafeRawBufferPointer(rebasing: second[secondDone...])
        )
    }
}

/// Thrown by the response writer when standard output fails (usually `EPIPE`: the web
/// server closed the pipe because the client went away).
struct CGIOutputError: Error, CustomStringConvertible {
    let errorNumber: Int32
    var description: String { "write to standard output failed: \(errorName(errorNumber))" }
}

/// Writes all of `bytes`; returns 0 or the `errno` that stopped it.
@discardableResult
func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
    bytes.withUnsafeBytes { writeAll(fd, $0, UnsafeRawBufferPointer(start: nil, count: 0)) }
}

/// Writes `first` then `second` with `writev(2)`, retrying partial writes and `EINTR`;
/// returns 0 or the `errno` that stopped it.
func writeAll(
    _ fd: Int32,
    _ first: UnsafeRawBufferPointer,
    _ second: UnsafeRawBufferPointer,
    offset: Int? = nil
) -> Int32 {
    var firstLeft = first.count
    var secondLeft = second.count
    while firstLeft + secondLeft > 0 {
        var vectors = (
            iovec(
                iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress.map { $0 + (first.count - firstLeft) }),
                iov_len: firstLeft
            ),
            iovec(
                iov_base: UnsafeMutableRawPointer(
                    mutating: second.baseAddress.map { $0 + (second.count - secondLeft) }
                ),
                iov_len: secondLeft
            )
        )
        let written = withUnsafeMutablePointer(to: &vectors) { pointer in
            pointer.withMemoryRebound(to: iovec.self, capacity: 2) { vector in
                let start = firstLeft == 0 ? vector + 1 : vector
                let count: Int32 = firstLeft == 0 || secondLeft == 0 ? 1 : 2
                guard let offset else { return writev(fd, start, count) }
                let done = first.count - firstLeft + second.count - secondLeft
                return pwritev(fd, start, count, off_t(offset + done))
            }
        }
        if written < 0 {
            if errno == EINTR { continue }
            return errno
        }
        let fromFirst = min(written, firstLeft)
        firstLeft -= fromFirst
        secondLeft -= written - fromFirst
    }
    return 0
}

/// `read(2)`, named apart from `RequestBodySource.read()`.
private func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

func errorName(_ number: Int32) -> String {
    guard let message = strerror(number) else { return "errno \(number)" }
    return "\(String(cString: message)) (errno \(number))"
}
