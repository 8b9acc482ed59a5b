import Gateway

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
