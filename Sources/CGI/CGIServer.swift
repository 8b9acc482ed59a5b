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
