import Foundation
import GatewayTestHarness
import Testing

@testable import FastCGIServer

#if canImport(Glibc)
import Glibc
#endif

/// The socket file's permissions, with the race between `bind` and `chmod`/`chown` made
/// deterministic: the file is swapped right after `bind`, where an attacker with write access
/// to the directory could swap it.
@Suite("Unix socket file")
struct UnixSocketFileTests {
    @Test(arguments: [false, true])
    func aFileSwappedInAfterBindIsNeverFollowedNorChanged(setsGroup: Bool) throws {
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let path = directory.path + "/app.sock"
        let victim = directory.path + "/victim"
        #expect(FileManager.default.createFile(atPath: victim, contents: Data("keep me".utf8)))
        #expect(chmod(victim, 0o600) == 0)
        #expect(chown(victim, 0, 0) == 0 || getuid() != 0)
        let permissions = SocketPermissions(mode: 0o666, group: setsGroup ? "65534" : nil)
        var swapped = false
        #expect(throws: UnixSocketFile.Replaced.self) {
            _ = try UnixSocketFile.makeListeningSocket(at: path, permissions: permissions, backlog: 8) {
                // The attacker's move: the socket file replaced by a symlink to another file.
                let link = directory.path + "/link"
                swapped = symlink(victim, link) == 0 && rename(link, path) == 0
            }
        }
        #expect(swapped)
        var status = stat()
        #expect(stat(victim, &status) == 0)
        #expect(
            status.st_mode & 0o7777 == 0o600,
            "the victim's mode became \(String(status.st_mode & 0o7777, radix: 8))"
        )
        #expect(status.st_gid == 0 || getuid() != 0, "the victim's group changed to \(status.st_gid)")
        // What replaced the socket is not the server's to remove.
        var link = stat()
        #expect(lstat(path, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK)
    }

    @Test func theModeComesFromBindUnderAnyProcessUmask() throws {
        let directory = try TemporaryDirectory(prefix: "sgw-", in: "/tmp")
        defer { directory.remove() }
        let previous = umask(0o077)
        defer { umask(previous) }
        let path = directory.path + "/app.sock"
        let descriptor = try UnixSocketFile.makeListeningSocket(
            at: path,
            permissions: SocketPermissions(mode: 0o666),
            backlog: 8
        )
        defer { close(descriptor) }
        var status = stat()
        #expect(lstat(path, &status) == 0 && status.st_mode & 0o7777 == 0o666)
        #expect(umask(0o077) == 0o077, "the process umask was not restored")
    }
}
