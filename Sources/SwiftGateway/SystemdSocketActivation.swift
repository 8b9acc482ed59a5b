#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The listening sockets systemd passes a socket-activated service (`sd_listen_fds(3)`): fds 3
/// onward, counted by `LISTEN_FDS`, meant for the process `LISTEN_PID` names, and named by
/// `LISTEN_FDNAMES`. Read without linking libsystemd, the way `sd_listen_fds(1)` reads them:
/// the sockets get close-on-exec and the variables are removed, so that a program this one
/// starts neither inherits the sockets nor mistakes itself for their owner.
struct SystemdSocketActivation: Sendable, Equatable {
    /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
    static let firstDescriptor: Int32 = 3
    /// More sockets than any unit declares; a larger `LISTEN_FDS` is a corrupt environment,
    /// refused rather than walked (each descriptor would be served).
    static let maxDescriptors = 64

    /// One passed socket: its descriptor and the name `FileDescriptorName=` gave it
    /// (systemd's default is the socket unit's name; "unknown" when none was passed).
    struct Socket: Sendable, Equatable {
        var descriptor: Int32
        var name: String
    }

    /// The sockets, in descriptor order.
    var sockets: [Socket]

    /// Why the variables were not usable; logged, and the process serves as if none were set.
    struct Invalid: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    /// Takes the sockets from the process environment and removes `LISTEN_PID`, `LISTEN_FDS`
    /// and `LISTEN_FDNAMES` from it. Nil when they are not set or meant for another process
    /// (a parent's variables inherited by mistake); throws when they are set for this process
    /// but malformed.
    static func takeFromEnvironment() throws(Invalid) -> SystemdSocketActivation? {
        let pid = getenv("LISTEN_PID").map { String(cString: $0) }
        let count = getenv("LISTEN_FDS").map { String(cString: $0) }
        let names = getenv("LISTEN_FDNAMES").map { String(cString: $0) }
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(name) }
        guard let activation = try parse(pid: pid, count: count, names: names, ownPID: getpid()) else { return nil }
        for socket in activation.sockets {
            let flags = fcntl(socket.descriptor, F_GETFD)
            guard flags >= 0 else {
                throw Invalid(description: "LISTEN_FDS names fd \(socket.descriptor), which is not open")
            }
            _ = fcntl(socket.descriptor, F_SETFD, flags | FD_CLOEXEC)
        }
        return activation
    }

    /// The sockets the variables describe for the process `ownPID`: nil when `LISTEN_PID` or
    /// `LISTEN_FDS` is unset, or `LISTEN_PID` is another process's; throws when a value is
    /// malformed. Names missing from `LISTEN_FDNAMES` are "unknown", as `sd_listen_fds_with_names`
    /// reports them.
    static func parse(
        pid: String?,
        count: String?,
        names: String?,
        ownPID: pid_t
    ) throws(Invalid)
        -> SystemdSocketActivation?
    {
        guard let pid, let count else { return nil }
        guard let listenPID = Int32(pid), listenPID > 0 else {
            throw Invalid(description: "LISTEN_PID=\(pid) is not a process id")
        }
        guard listenPID == ownPID else { return nil }
        guard let number = Int(count), (0...maxDescriptors).contains(number) else {
            throw Invalid(description: "LISTEN_FDS=\(count) is not a number of sockets from 0 to \(maxDescriptors)")
        }
        let given = names.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        let sockets = (0..<number).map { index in
            Socket(
                descriptor: firstDescriptor + Int32(index),
                name: index < given.count && !given[index].isEmpty ? given[index] : "unknown"
            )
        }
        return SystemdSocketActivation(sockets: sockets)
    }
}
