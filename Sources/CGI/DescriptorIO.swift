#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// `strerror`'s message with the number, for error logs.
func errorName(_ number: Int32) -> String {
    guard let message = strerror(number) else { return "errno \(number)" }
    return "\(String(cString: message)) (errno \(number))"
}
