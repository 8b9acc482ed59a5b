import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Unix socket file a server listens on. Web server workers connect to it by path, so it
/// must not accept connections before its mode and owner are set: a worker running as another
/// user would be refused (nginx answers 502, Apache 503) by a server that looks ready. So, in
/// spawn-fcgi's order, the socket is bound, given its permissions, and only then listens. A
/// dead server's stale file is replaced; a live server's file, or anything that is not a
/// socket, never is.
enum UnixSocketFile {
    /// Another server answers on the path.
    struct AddressInUse: Error, CustomStringConvertible {
        let path: String
        var description: String { "another server is already listening on \(path)" }
    }

    /// The path names something other than a socket, which a server must not delete.
    struct NotASocket: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) exists and is not a socket; remove it or choose another path" }
    }

    /// The path is longer than a Unix socket address holds.
    struct PathTooLong: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "the socket path \(path) is \(path.utf8.count) bytes long; a Unix socket address holds at most 103"
        }
    }

    /// The socket's owner or group names no user or group of this machine.
    struct UnknownOwner: Error, CustomStringConvertible {
        let description: String
    }

    /// A system call failed while making the socket.
    struct SocketError: Error, CustomStringConvertible {
        let description: String
        init(_ operation: String, _ path: String) {
            description = "cannot \(operation) \(path): \(String(cString: strerror(errno)))"
        }
    }

    /// A socket listening on `path` with `permissions` applied before it listened, for
    /// SwiftNIO to adopt.
    static func makeListeningSocket(at path: String, permissions: SocketPermissions, backlog: Int32) throws -> CInt {
        // SwiftNIO allows 103 bytes, what every platform's `sun_path` holds.
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else { throw PathTooLong(path: path) }
        try removeStale(path)
        let descriptor = makeStreamSocket()
        guard descriptor >= 0 else { throw SocketError("create a socket for", path) }
        let bound = address.withSockAddr { bind(descriptor, $0, socklen_t($1)) } == 0
        guard bound else {
            let error = SocketError("bind", path)
            close(descriptor)
            throw error
        }
        do {
            try apply(permissions, to: path)
            guard listen(descriptor, backlog) == 0 else { throw SocketError("listen on", path) }
        } catch {
            close(descriptor)
            unlink(path)
            throw error
        }
        return descriptor
    }

    /// Unlinks a socket file nothing answers on, so that `bind` can create it again; refuses
    /// a path a live server answers on, or one that names something other than a socket.
    private static func removeStale(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else { throw NotASocket(path: path) }
        if isLive(path) { throw AddressInUse(path: path) }
        unlink(path)
    }

    /// Which file a path named: device and inode.
    struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64
    }

    /// The file at `path` now, if any: the server notes its own socket's, to remove that one only.
    static func identity(of path: String) -> Identity? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// Unlinks `path` if it is still the file `identity` names (not one a successor bound since).
    static func remove(_ path: String, ifStill identity: Identity) {
        guard Self.identity(of: path) == identity else { return }
        unlink(path)
    }

    /// A new Unix stream socket, not inherited by programs the application runs (-1 on failure).
    private static func makeStreamSocket() -> CInt {
        #if canImport(Glibc)
        socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_STREAM, 0)
        if descriptor >= 0 { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        return descriptor
        #endif
    }

    /// Whether a server accepts connections on `path`.
    private static func isLive(_ path: String) -> Bool {
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else { return false }
        let descriptor = makeStreamSocket()
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return address.withSockAddr { connect(descriptor, $0, socklen_t($1)) } == 0
    }

    private static func apply(_ permissions: SocketPermissions, to path: String) throws {
        guard chmod(path, mode_t(permissions.mode)) == 0 else {
            throw SocketError("set the mode of", path)
        }
        guard permissions.owner != nil || permissions.group != nil else { return }
        let uid = try permissions.owner.map(userID) ?? uid_t.max
        let gid = try permissions.group.map(groupID) ?? gid_t.max
        guard chown(path, uid, gid) == 0 else {
            throw SocketError("change the owner of", path)
        }
    }

    private static func userID(_ name: String) throws -> uid_t {
        if let id = uid_t(name) { return id }
        guard let entry = getpwnam(name) else { throw UnknownOwner(description: "no such user: \(name)") }
        return entry.pointee.pw_uid
    }

    private static func groupID(_ name: String) throws -> gid_t {
        if let id = gid_t(name) { return id }
        guard let entry = getgrnam(name) else { throw UnknownOwner(description: "no such group: \(name)") }
        return entry.pointee.gr_gid
    }
}
