/// Where a FastCGI server listens.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// A Unix socket at this path: the usual way behind a web server on the same host.
    case unix(path: String, permissions: SocketPermissions = SocketPermissions())
    /// TCP on a host (IPv4 or IPv6 literal, or a name) and port: for a web server on another host.
    case tcp(host: String, port: Int)
    /// A listening socket inherited on this file descriptor: 0 as spawn-fcgi, Apache
    /// mod_fcgid and `cgi-fcgi -start` hand it over.
    case inheritedDescriptor(Int32)

    /// True for a socket handed over by a process manager, which may share it among processes.
    public var isInherited: Bool {
        if case .inheritedDescriptor = self { return true }
        return false
    }

    /// The address as log lines and errors name it: `unix:PATH`, `HOST:PORT` or `fd N`.
    public var description: String {
        switch self {
        case .unix(let path, _): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .inheritedDescriptor(let fd): "fd \(fd)"
        }
    }
}

/// Who may connect to a Unix socket: its mode, owner and group.
///
/// The default `0660` lets the server's own user and group in (put the web server's user in
/// that group); a world-writable socket must be asked for explicitly.
public struct SocketPermissions: Sendable, Equatable {
    /// File mode bits of the socket file.
    public var mode: UInt32
    /// User name or numeric id to own the socket; nil keeps the process's.
    public var owner: String?
    /// Group name or numeric id of the socket; nil keeps the process's.
    public var group: String?

    /// Permissions with the given mode (default `0o660`), owner and group.
    public init(mode: UInt32 = 0o660, owner: String? = nil, group: String? = nil) {
        self.mode = mode
        self.owner = owner
        self.group = group
    }
}
