#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How this process was started, decided like libfcgi's `FCGX_IsCGI`.
enum ProcessMode {
    /// True when `descriptor` is a socket that is not connected: a listening socket handed
    /// over by a process manager (libfcgi's test: `getpeername` fails with `ENOTCONN`).
    static func isListeningSocket(_ descriptor: Int32) -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) }
        }
        return result != 0 && errno == ENOTCONN
    }

    /// A web server started this process for one CGI request: `REQUEST_METHOD` is set and
    /// fd 0 is not a listening socket (spawn-fcgi's children may inherit a stray variable).
    static var isCGIRequest: Bool {
        getenv("REQUEST_METHOD") != nil && !isListeningSocket(0)
    }
}
