import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The status line and headers of an HTTP response.
public struct HTTPResponseHead: Sendable {
    /// The status code.
    public var status: Int
    /// The header fields in order.
    public var headers: [(name: String, value: String)]

    /// The first value of `name` (case-insensitive).
    public subscript(header name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// One HTTP/1.1 client connection to 127.0.0.1 for the end-to-end tests, for what
/// ``HTTPClient`` cannot do: bodies too large to hold (generated while sent, checked while
/// received), timestamps of each piece of a streamed response, hanging up mid-response, and
/// several requests on one kept connection. Blocking, bounded by deadlines: run it on a
/// dedicated thread (``onDedicatedThread(_:)``).
public final class HTTPStreamConnection {
    private var fd: Int32
    private var pending: [UInt8] = []
    private var readBuffer = [UInt8](repeating: 0, count: 256 * 1024)

    /// Connects to 127.0.0.1:`port`.
    public init(port: Int) throws {
        signal(SIGPIPE, SIG_IGN)
        fd = try PortAllocator.connect(port: port)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { close() }

    /// Closes the connection (also mid-response: a client hanging up).
    public func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    /// Sends a request whose `bodyLength` bytes come from `body(offset, maxCount)` while it
    /// reads the response (so an echo cannot deadlock), calling `onHead` once and `onBody`
    /// with each piece of the (de-chunked) body as it arrives. `onBody` returning false stops
    /// reading at once (the caller may then ``close()``); the result says whether the
    /// response was read to its end. Throws when `deadline` passes.
    @discardableResult
    public func exchange(
        method: String,
        target: String,
        headers: [(name: String, value: String)] = [],
        bodyLength: Int = 0,
        body: (_ offset: Int, _ maxCount: Int) -> [UInt8] = { _, _ in [] },
        keepAlive: Bool = false,
        deadline: ContinuousClock.Instant,
        onHead: (HTTPResponseHead) throws -> Void = { _ in },
        onBody: (UnsafeRawBufferPointer) throws -> Bool = { _ in true }
    ) throws -> Bool {
        guard fd >= 0 else { throw TransportError("the connection is closed") }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if bodyLength > 0 || method == "POST" || method == "PUT" { head += "Content-Length: \(bodyLength)\r\n" }
        head += keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
        var outgoing = Array(head.utf8)
        var outgoingOffset = 0
        var bodySent = 0
        var parser = HTTPResponseStreamParser(isHeadRequest: method == "HEAD")
        var stopped = false
        func deliver(_ bytes: UnsafeRawBufferPointer) throws -> Bool {
            if try onBody(bytes) { return true }
            stopped = true
            return false
        }

        // Bytes left over from the previous response on a kept connection.
        if !pending.isEmpty {
            let leftover = pending
            pending = []
            let consumed = try leftover.withUnsafeBytes { raw in
                try parser.feed(raw, onHead: onHead, onBody: deliver)
            }
            if parser.isComplete {
                pending = Array(leftover[consumed...])
                return true
            }
            if stopped { return false }
        }
        while true {
            let writing = outgoingOffset < outgoing.count || bodySent < bodyLength
            var fds = [pollfd(fd: fd, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0)]
            let left = deadline - ContinuousClock.now
            guard left > .zero else {
                throw TransportError("HTTP \(method) \(target): timed out (\(parser.bodyBytes) body bytes received)")
            }
            let milliseconds = Int32(min(left.components.seconds * 1000 + 1, 60_000))
            let ready = poll(&fds, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw TransportError("poll failed: errno \(errno)")
            }
            if ready == 0 { continue }
            let events = fds[0].revents
            if writing, events & Int16(POLLOUT) != 0 {
                if outgoingOffset == outgoing.count {
                    outgoing = body(bodySent, min(bodyLength - bodySent, 256 * 1024))
                    outgoingOffset = 0
                    bodySent += outgoing.count
                    precondition(!outgoing.isEmpty, "the body generator returned nothing")
                }
                let written = outgoing.withUnsafeBytes { raw in
                    write(fd, raw.baseAddress! + outgoingOffset, outgoing.count - outgoingOffset)
                }
                if written > 0 {
                    outgoingOffset += written
                } else if written < 0, errno != EAGAIN, errno != EINTR {
                    guard errno == EPIPE || errno == ECONNRESET else {
                        throw TransportError("write failed: \(String(cString: strerror(errno)))")
                    }
                    // The server answered without reading everything: stop sending, keep reading.
                    outgoingOffset = outgoing.count
                    bodySent = bodyLength
                }
            }
            if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let count = read(fd, &readBuffer, readBuffer.count)
                if count > 0 {
                    var consumed = 0
                    try readBuffer.withUnsafeBytes { raw in
                        let piece = UnsafeRawBufferPointer(rebasing: raw[0..<count])
                        consumed = try parser.feed(piece, onHead: onHead, onBody: deliver)
                    }
                    if parser.isComplete {
                        if consumed < count { pending = Array(readBuffer[consumed..<count]) }
                        return true
                    }
                    if stopped { return false }
                } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    try parser.finishAtEndOfFile()
                    close()
                    return true
                }
            }
        }
    }
}

/// Incremental HTTP/1.1 response parser: head, then a body delimited by Content-Length,
/// chunked encoding, or the end of the connection.
struct HTTPResponseStreamParser {
    private enum State {
        case head
        case fixed(left: Int)
        case chunkSize
        case chunkData(left: Int)
        case chunkDataEnd
        case trailer
        case untilClose
        case complete
    }

    let isHeadRequest: Bool
    private var state = State.head
    private var line: [UInt8] = []
    private(set) var bodyBytes = 0

    init(isHeadRequest: Bool) {
        self.isHeadRequest = isHeadRequest
    }

    var isComplete: Bool {
        if case .complete = state { return true }
        return false
    }

    /// Consumes `bytes` up to the end of the response; returns how many it consumed.
    @discardableResult
    mutating func feed(
        _ bytes: UnsafeRawBufferPointer,
        onHead: (HTTPResponseHead) throws -> Void,
        onBody: (UnsafeRawBufferPointer) throws -> Bool
    ) throws -> Int {
        var index = 0
        while index < bytes.count {
            switch state {
            case .complete:
                return index
            case .head:
                line.append(bytes[index])
                index += 1
                if line.count >= 4, line.suffix(4).elementsEqual([13, 10, 13, 10]) {
                    let head = try Self.parseHead(line)
                    line = []
                    try onHead(head)
                    state = bodyState(for: head)
                }
            case .fixed(let left):
                let take = min(left, bytes.count - index)
                bodyBytes += take
                let more = try onBody(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                state = left - take == 0 ? .complete : .fixed(left: left - take)
                if !more { return index }
            case .untilClose:
                let take = bytes.count - index
                bodyBytes += take
                let more = try onBody(UnsafeRawBufferPointer(rebasing: bytes[index...]))
                index += take
                if !more { return index }
            case .chunkSize, .chunkDataEnd, .trailer:
                let byte = bytes[index]
                index += 1
                guard byte == 10 else {
                    line.append(byte)
                    continue
                }
                let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                line = []
                if case .chunkSize = state {
                    guard let size = Int(text.prefix { $0 != ";" }, radix: 16) else {
                        throw TransportError("bad chunk size line: \(text)")
                    }
                    state = size == 0 ? .trailer : .chunkData(left: size)
                } else if case .chunkDataEnd = state {
                    state = .chunkSize
                } else if text.isEmpty {
                    state = .complete
                }
            case .chunkData(let left):
                let take = min(left, bytes.count - index)
                bodyBytes += take
                let more = try onBody(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                state = left - take == 0 ? .chunkDataEnd : .chunkData(left: left - take)
                if !more { return index }
            }
        }
        return index
    }

    mutating func finishAtEndOfFile() throws {
        switch state {
        case .untilClose, .complete: state = .complete
        case .head: throw TransportError("the connection closed before a complete response head")
        default: throw TransportError("the connection closed mid-body after \(bodyBytes) bytes")
        }
    }

    private func bodyState(for head: HTTPResponseHead) -> State {
        if isHeadRequest || head.status == 204 || head.status == 304 || head.status < 200 { return .complete }
        if head[header: "Transfer-Encoding"]?.lowercased().contains("chunked") == true { return .chunkSize }
        if let length = head[header: "Content-Length"].flatMap({ Int($0) }) {
            return length == 0 ? .complete : .fixed(left: length)
        }
        return .untilClose
    }

    private static func parseHead(_ bytes: [UInt8]) throws -> HTTPResponseHead {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard let statusLine = lines.first else { throw TransportError("empty HTTP response head") }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw TransportError("bad HTTP status line: \(statusLine)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw TransportError("bad header line: \(line)") }
            headers.append(
                (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            )
        }
        return HTTPResponseHead(status: status, headers: headers)
    }
}
