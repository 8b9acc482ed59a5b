import Foundation
import GatewayTestHarness

#if canImport(Glibc)
import Glibc
#endif

/// The service manager's end of `NOTIFY_SOCKET`, as systemd binds it: a Unix datagram socket
/// the test owns, whose messages (`READY=1\nSTATUS=…`) it reads with a deadline.
final class NotifySocketListener: Sendable {
    /// The socket's path, for `NOTIFY_SOCKET`.
    let path: String
    private let descriptor: Int32

    /// Binds a datagram socket at `path` (which must not exist), or in the abstract namespace
    /// when it starts with `@`, as systemd may.
    init(path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TransportError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let isAbstract = bytes.first == UInt8(ascii: "@")
        if isAbstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(descriptor)
            throw TransportError("\(path) is too long for a Unix socket")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(
                    descriptor,
                    $0,
                    isAbstract
                        ? socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
                        : socklen_t(MemoryLayout<sockaddr_un>.size)
                )
            }
        }
        guard bound == 0, fcntl(descriptor, F_SETFL, O_NONBLOCK) == 0 else {
            let error = String(cString: strerror(errno))
            close(descriptor)
            throw TransportError("cannot bind \(path): \(error)")
        }
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
        if !path.hasPrefix("@") { unlink(path) }
    }

    /// The next datagram's lines, or nil when none arrives within `timeout`.
    func nextMessage(timeout: Duration) async -> [String]? {
        var message: [String]?
        _ = await poll(timeout: timeout, interval: .milliseconds(10)) {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            message = String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n").map(String.init)
            return true
        }
        return message
    }

    /// Reads messages until one holds `field` (e.g. `READY=1`); every message read on the way,
    /// that one last, or nil (with what was read) when none holds it within `timeout`.
    func waitFor(_ field: String, timeout: Duration) async -> (found: Bool, messages: [[String]]) {
        let deadline = ContinuousClock.now + timeout
        var messages: [[String]] = []
        while ContinuousClock.now < deadline {
            guard let message = await nextMessage(timeout: deadline - ContinuousClock.now) else { break }
            messages.append(message)
            if message.contains(field) { return (true, messages) }
        }
        return (false, messages)
    }
}
