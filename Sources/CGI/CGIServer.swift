public import Gateway
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs an ``GatewayApplication`` once as a CGI/1.1 process (RFC 3875).
///
/// The process environment becomes the ``Environ``'s variables (in environment order),
/// standard input the request body (never read past `CONTENT_LENGTH`; no `CONTENT_LENGTH`
/// means no body), standard error the error log, and the response goes to standard output
/// as a CGI response (`Status:` line, headers, blank line, body) through ``ResponseDriver``,
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
    /// `logger` is the base of the request's ``Environ/logger`` (which adds the request id,
    /// method and path). Standard output is the response, so it must not log there.
    nonisolated(nonsending) public static func run(
        _ application: some GatewayApplication,
        logger: Logger = Environ.discardingLogger
    ) async -> Int32 {
        if getenv("REQUEST_METHOD") == nil, isatty(0) != 0 {
            let name = CommandLine.arguments.first ?? "app"
            writeAll(2, Array(usage(programName: name).utf8))
            return 2
        }
        return await run(application, variables: processEnvironment(), logger: logger)
    }

    /// Serves one request with explicit variables and file descriptors: what ``run(_:)`` does
    /// after reading its environment, for tests and for programs that prepare their own.
    nonisolated(nonsending) public static func run(
        _ application: some GatewayApplication,
        variables: CGIVariables,
        input: Int32 = 0,
        output: Int32 = 1,
        error: Int32 = 2,
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
        var body: DescriptorBodySource?
        if let length = environ.contentLength, length > 0 {
            body = DescriptorBodySource(fd: input, length: length)
            environ.input = GatewayRequestBody(source: body!, contentLength: length)
        }
        var writer = DescriptorOutput(fd: output, input: body)
        switch await ResponseDriver.run(application, environ: environ, output: &writer) {
        case .completed, .applicationFailed(headSent: false):
            return 0
        case .applicationFailed(headSent: true):
            return 1
        case .outputFailed:
            errors.write("swift-gateway: could not write the response to standard output: \(errorName(writer.failure))")
            return 1
        }
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

/// Reads the request body from a file descriptor in chunks of up to 64 KiB, never asking
/// for more than the bytes `CONTENT_LENGTH` announced (so it never blocks on data that will
/// not come).
///
/// Web servers running CGI (Apache's mod_cgid, fcgiwrap) write the whole request body to the
/// program before they read any of its output. An application that starts its response before
/// reading its whole body (an echo, a streaming transform) would deadlock them once the pipes
/// fill. So before the first response bytes go out, ``spoolRemaining()`` reads the rest of the
/// body into a spool (the first 1 MiB in memory, the rest in an unlinked temporary file) and
/// later reads are served from there.
final class DescriptorBodySource: RequestBodySource, @unchecked Sendable {
    // Only the one task serving the request reads the body and writes the response, one
    // call at a time, so the state needs no lock.
    private let fd: Int32
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

    /// Reads the rest of the body from the descriptor into the spool.
    func spoolRemaining() {
        while received < length {
            let chunk: [UInt8]
            do {
                chunk = try readChunk(from: fd, count: min(Self.chunkSize, length - received), at: nil)
            } catch {
                pendingError = error
                return
            }
            received += chunk.count
            if spoolFile < 0, memory.count - memoryOffset + chunk.count <= Self.memoryLimit {
                memory += chunk
                continue
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
    }

    /// One `read(2)` (or `pread(2)` at `offset`) of up to `count` bytes, retried on `EINTR`;
    /// throws ``RequestBodyIncomplete`` when it fails or finds the end of the input early.
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
    /// The request body, spooled before the first write (see ``DescriptorBodySource``).
    let input: DescriptorBodySource?
    /// The `errno` of the write that failed.
    var failure: Int32 = 0

    nonisolated(nonsending) mutating func send(head: [UInt8], body: [UInt8], isLast: Bool) async throws {
        if let input, !input.isDrained { input.spoolRemaining() }
        let result = head.withUnsafeBytes { head in
            body.withUnsafeBytes { body in writeAll(fd, head, body) }
        }
        if result != 0 {
            failure = result
            throw CGIOutputError(errorNumber: result)
        }
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

/// `read(2)`, named apart from ``RequestBodySource/read()``.
private func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

func errorName(_ number: Int32) -> String {
    guard let message = strerror(number) else { return "errno \(number)" }
    return "\(String(cString: message)) (errno \(number))"
}
