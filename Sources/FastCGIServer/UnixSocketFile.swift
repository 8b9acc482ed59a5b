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
/// spawn-fcgi's order, the socket is bound, given its permissions, and only then listens.
///
/// The permissions are never applied through a path that could be followed: the mode is set
/// by `bind` itself (under a umask that leaves exactly the requested bits), and the owner on
/// a descriptor of the file opened without following a symlink and checked to be a socket.
/// A symlink swapped in after `bind` is therefore never followed, and makes the start fail.
///
/// A dead server's stale file is replaced; a live server's file, or anything that is not a
/// socket, never is. Only `ECONNREFUSED` proves a socket file stale: any other failure to
/// connect (`EACCES`, `EAGAIN` from a live server with a full backlog …) refuses to start.
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

    /// A socket file exists, and connecting to it failed with something other than
    /// `ECONNREFUSED`: a live server may own it, so it is left alone.
    struct LivenessUnknown: Error, CustomStringConvertible {
        let path: String
        let errorNumber: Int32
        var description: String {
            "\(path) exists and connecting to it failed (\(String(cString: strerror(errorNumber)))), so another "
                + "server may be using it; not replacing it. Remove it if no server uses it, or choose another path"
        }
    }

    /// After `bind`, the path no longer names the socket with the mode it was bound with:
    /// something replaced it, and the server does not change the owner of whatever is there.
    struct Replaced: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) was replaced while the server was creating its socket there" }
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
    ///
    /// `afterBind` runs between `bind` and setting the owner: tests swap the file there to
    /// check that nothing follows the path.
    static func makeListeningSocket(
        at path: String,
        permissions: SocketPermissions,
        backlog: Int32,
        afterBind: () -> Void = {}
    ) throws -> CInt {
        // SwiftNIO allows 103 bytes, what every platform's `sun_path` holds.
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else { throw PathTooLong(path: path) }
        try removeStale(path)
        let descriptor = makeStreamSocket()
        guard descriptor >= 0 else { throw SocketError("create a socket for", path) }
        // The umask is the process's: no other thread creates files while a server starts.
        let mode = mode_t(permissions.mode) & 0o777
        let previousMask = umask(0o777 & ~mode)
        let bound = address.withSockAddr { bind(descriptor, $0, socklen_t($1)) } == 0
        umask(previousMask)
        guard bound else {
            let error = SocketError("bind", path)
            close(descriptor)
            throw error
        }
        afterBind()
        do {
            try apply(permissions, to: path)
            guard listen(descriptor, backlog) == 0 else { throw SocketError("listen on", path) }
        } catch {
            close(descriptor)
            // What replaced the socket is not ours to remove.
            if !(error is Replaced) { unlink(path) }
            throw error
        }
        return descriptor
    }

    /// Unlinks a socket file nothing answers on, so that `bind` can create it again; refuses
    /// a path a live server answers on, one whose liveness a failed `connect` leaves unknown,
    /// or one that names something other than a socket.
    private static func removeStale(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else { throw NotASocket(path: path) }
        switch connectResult(path) {
        case 0: throw AddressInUse(path: path)
        case ECONNREFUSED: unlink(path)
        case ENOENT: return  // gone meanwhile: nothing to remove
        case let failure: throw LivenessUnknown(path: path, errorNumber: failure)
        }
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
    private static func makeStreamSocket(nonBlocking: Bool = false) -> CInt {
        #if canImport(Glibc)
        let flags = Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        return socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | flags, 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_STREAM, 0)
        if descriptor >= 0 {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            if nonBlocking { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        }
        return descriptor
        #endif
    }

    /// 0 when a server accepts connections on `path`, else the `errno` of the failed
    /// `connect`. Non-blocking, so a live server with a full backlog answers `EAGAIN` at once
    /// instead of holding the start up.
    private static func connectResult(_ path: String) -> Int32 {
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else { return ENAMETOOLONG }
        let descriptor = makeStreamSocket(nonBlocking: true)
        guard descriptor >= 0 else { return errno }
        defer { close(descriptor) }
        while true {
            if address.withSockAddr({ connect(descriptor, $0, socklen_t($1)) }) == 0 { return 0 }
            if errno != EINTR { return errno }
        }
    }

    /// Sets the owner and group, if asked, on the socket file `bind` just made, without ever
    /// following the path: on Linux through an `O_PATH | O_NOFOLLOW` descriptor checked to be
    /// a socket, elsewhere with `fchownat(AT_SYMLINK_NOFOLLOW)`. Then the file must be a socket
    /// with the requested mode (a directory's default ACL can override the umask; on Linux the
    /// mode is then set through the same descriptor).
    private static func apply(_ permissions: SocketPermissions, to path: String) throws {
        let mode = mode_t(permissions.mode) & 0o777
        let owner = try permissions.owner.map(userID) ?? uid_t.max
        let group = try permissions.group.map(groupID) ?? gid_t.max
        let changesOwner = permissions.owner != nil || permissions.group != nil
        #if canImport(Glibc)
        let file = open(path, linuxOpenPath | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0 else { throw Replaced(path: path) }
        defer { close(file) }
        var status = stat()
        guard fstat(file, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { throw Replaced(path: path) }
        if changesOwner, fchownat(file, "", owner, group, linuxAtEmptyPath) != 0 {
            throw SocketError("change the owner of", path)
        }
        if status.st_mode & 0o7777 != mode, chmod("/proc/self/fd/\(file)", mode) != 0 {
            throw SocketError("set the mode of", path)
        }
        #else
        if changesOwner, fchownat(AT_FDCWD, path, owner, group, AT_SYMLINK_NOFOLLOW) != 0 {
            throw SocketError("change the owner of", path)
        }
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK, status.st_mode & 0o7777 == mode else {
            throw Replaced(path: path)
        }
        #endif
    }

    #if canImport(Glibc)
    /// Linux's `O_PATH` and `AT_EMPTY_PATH` (their values on x86-64 and arm64), which Glibc's
    /// module map hides behind `_GNU_SOURCE`.
    private static let linuxOpenPath: Int32 = 0o10_000_000
    private static let linuxAtEmptyPath: Int32 = 0x1000
    #endif

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
