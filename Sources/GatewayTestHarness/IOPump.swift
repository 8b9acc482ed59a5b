#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Moves bytes between descriptors with poll(2) on one thread: writes one buffer while
/// reading others to their end, so neither side can block the other, all before a deadline.
enum IOPump {
    /// Writes `writing.bytes` to `writing.fd` (closing it afterwards when asked) while reading
    /// every descriptor of `reading` until end of file; returns what each one gave. A write
    /// refused with `EPIPE`/`ECONNRESET` stops writing (the peer answered without reading it
    /// all); reading goes on. Throws when `deadline` passes. Closes the read descriptors.
    static func run(
        writing: (fd: Int32, bytes: [UInt8], closeWhenDone: Bool)?,
        reading: [Int32],
        deadline: ContinuousClock.Instant
    ) throws -> [[UInt8]] {
        var outputs = [[UInt8]](repeating: [], count: reading.count)
        var open = reading.map { Optional($0) }
        var writeFD = writing?.fd
        let bytes = writing?.bytes ?? []
        var offset = 0
        defer {
            for fd in open.compactMap({ $0 }) { close(fd) }
            if let writeFD, writing?.closeWhenDone == true { close(writeFD) }
        }
        for fd in reading + (writeFD.map { [$0] } ?? []) {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        func finishWriting() {
            if let fd = writeFD, writing?.closeWhenDone == true { close(fd) }
            writeFD = nil
        }
        if bytes.isEmpty { finishWriting() }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while writeFD != nil || open.contains(where: { $0 != nil }) {
            var fds: [pollfd] = []
            var owners: [Int] = []  // -1: the write side, else an index into `reading`
            if let fd = writeFD {
                fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0))
                owners.append(-1)
            }
            for (index, fd) in open.enumerated() {
                if let fd {
                    fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                    owners.append(index)
                }
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw TransportError("timed out moving bytes") }
            let milliseconds = Int32(min(left.components.seconds * 1000 + 1, 60_000))
            let ready = poll(&fds, nfds_t(fds.count), milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw TransportError("poll failed: errno \(errno)")
            }
            for (position, entry) in fds.enumerated() where entry.revents != 0 {
                let owner = owners[position]
                if owner == -1 {
                    let written = bytes.withUnsafeBytes { raw in
                        write(entry.fd, raw.baseAddress! + offset, min(bytes.count - offset, 1 << 20))
                    }
                    if written > 0 {
                        offset += written
                        if offset == bytes.count { finishWriting() }
                    } else if written < 0, errno != EAGAIN, errno != EINTR {
                        guard errno == EPIPE || errno == ECONNRESET else {
                            throw TransportError("write failed: errno \(errno)")
                        }
                        finishWriting()
                    }
                } else {
                    let count = read(entry.fd, &buffer, buffer.count)
                    if count > 0 {
                        outputs[owner] += buffer[0..<count]
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        close(entry.fd)
                        open[owner] = nil
                        if entry.fd == writeFD { writeFD = nil }  // a socket: both directions are gone
                    }
                }
            }
        }
        return outputs
    }
}
