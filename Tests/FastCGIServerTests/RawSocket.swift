import GatewayTestHarness

#if canImport(Glibc)
import Glibc
#endif

/// A blocking Unix-socket connection with receive timeouts, for tests that must see raw bytes
/// (record headers, an HTTP request's fate) or misbehave below the test client's level.
final class RawSocket {
    let fd: Int32

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init(unixPath path: String) throws {
        switch PortAllocator.connect(unixSocket: path) {
        case .success(let descriptor): fd = descriptor
        case .failure(let error): throw Failure(description: "\(error)")
        }
    }

    deinit { Glibc.close(fd) }

    /// Writes everything (fails on a reset or a closed peer instead of raising SIGPIPE).
    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw Failure(description: "send: errno \(errno)") }
            offset += written
        }
    }

    /// Reads what arrives within `timeout` ms; stops at EOF, or once `limit` bytes are in.
    /// Returns the bytes and whether EOF (or a reset) was seen.
    func read(timeoutMilliseconds timeout: Int32, limit: Int = 1 << 20) -> (bytes: [UInt8], eof: Bool) {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Int(deadline.tv_sec) * 1000 + Int(deadline.tv_nsec) / 1_000_000 + Int(timeout)
        while result.count < limit {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = end - (Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000)
            if left <= 0 { return (result, false) }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(left))
            if ready <= 0 { continue }
            let count = recv(fd, &chunk, min(chunk.count, limit - result.count), 0)
            if count <= 0 { return (result, true) }
            result += chunk[..<count]
        }
        return (result, false)
    }

    /// Half-closes the writing side.
    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Sets SO_LINGER 0 so that closing sends a reset.
    func setResetOnClose() {
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
    }
}

/// The records in `bytes` as (type, id, content), for raw checks.
func splitRecords(_ bytes: [UInt8]) -> [(type: UInt8, id: UInt16, content: [UInt8])] {
    var records: [(UInt8, UInt16, [UInt8])] = []
    var index = 0
    while index + 8 <= bytes.count {
        let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
        let padding = Int(bytes[index + 6])
        guard index + 8 + length + padding <= bytes.count else { break }
        let id = UInt16(bytes[index + 2]) << 8 | UInt16(bytes[index + 3])
        records.append((bytes[index + 1], id, Array(bytes[(index + 8)..<(index + 8 + length)])))
        index += 8 + length + padding
    }
    return records
}
