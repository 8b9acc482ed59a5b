#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Tells the service manager how the server is doing (`sd_notify(3)`) without linking
/// libsystemd: one datagram per message to the Unix socket `NOTIFY_SOCKET` names (a path, or
/// an abstract socket when it starts with `@`). A `Type=notify` unit is started once
/// `READY=1` arrives; `STOPPING=1` says a graceful stop began; `STATUS=` is the line
/// `systemctl status` shows. Without `NOTIFY_SOCKET` every call does nothing.
struct SystemdNotifier: Sendable {
    /// The socket address, or nil when the process was not started by a service manager
    /// that listens (or the variable is unusable).
    private let address: String?

    /// A notifier for `NOTIFY_SOCKET` of the process environment.
    init() {
        self.init(notifySocket: getenv("NOTIFY_SOCKET").map { String(cString: $0) })
    }

    /// A notifier for this `NOTIFY_SOCKET` value.
    init(notifySocket: String?) {
        guard let notifySocket, notifySocket.utf8.count >= 2,
            notifySocket.hasPrefix("/") || notifySocket.hasPrefix("@")
        else {
            address = nil
            return
        }
        address = notifySocket
    }

    /// True when messages go somewhere.
    var isEnabled: Bool { address != nil }

    /// Sends `fields` (`READY=1`, `STATUS=…`), one per line, in one datagram. Returns false
    /// when it could not be sent; a failed notification never stops the server (systemd then
    /// reports the start as timed out, which says more than an exit would).
    @discardableResult
    func notify(_ fields: [String]) -> Bool {
        guard let address else { return true }
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        var path = Array(address.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: socketAddress.sun_path)
        guard path.count < capacity || (path.first == 0 && path.count <= capacity) else { return false }
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        #if canImport(Glibc)
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_DGRAM, 0)
        #endif
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let message = Array((fields.joined(separator: "\n") + "\n").utf8)
        let sent = message.withUnsafeBytes { bytes in
            withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes.baseAddress, bytes.count, 0, $0, length)
                }
            }
        }
        return sent == message.count
    }
}
