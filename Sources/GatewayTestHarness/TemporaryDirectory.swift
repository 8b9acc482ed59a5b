import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fresh directory under the system's temporary directory, removed by ``remove()``.
public final class TemporaryDirectory: Sendable {
    /// Its absolute path.
    public let path: String

    /// Creates `<parent>/<prefix>XXXXXX` (in the system's temporary directory unless told
    /// otherwise), readable by everyone (servers drop privileges).
    public init(prefix: String, in parent: String = NSTemporaryDirectory()) throws {
        var template = Array((parent + "/" + prefix + "XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw TransportError("mkdtemp failed: errno \(errno)") }
        path = String(cString: created)
        chmod(path, 0o755)
    }

    /// Writes `contents` to `name` inside the directory; returns its path.
    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> String {
        let file = path + "/" + name
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Creates the directory `name` inside this one (and its parents); returns its path.
    @discardableResult
    public func makeDirectory(_ name: String) throws -> String {
        let directory = path + "/" + name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        return directory
    }

    /// Copies the executable at `source` to `name` inside this directory, mode 0755; returns its path.
    ///
    /// Copied with descriptors opened `O_CLOEXEC`: a program started meanwhile by another test
    /// must not inherit the file open for writing, or executing it fails with `ETXTBSY`.
    public func copyExecutable(_ source: String, to name: String) throws -> String {
        let target = path + "/" + name
        unlink(target)
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw TransportError("cannot open \(source): errno \(errno)") }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        guard output >= 0 else { throw TransportError("cannot create \(target): errno \(errno)") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = Glibc.read(input, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw TransportError("cannot read \(source): errno \(errno)") }
            if count == 0 { break }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { Glibc.write(output, $0.baseAddress! + written, count - written) }
                if result < 0, errno == EINTR { continue }
                guard result > 0 else { throw TransportError("cannot write \(target): errno \(errno)") }
                written += result
            }
        }
        fchmod(output, 0o755)
        return target
    }

    /// The contents of `name` inside the directory, or "" when it does not exist.
    public func read(_ name: String) -> String {
        FileManager.default.contents(atPath: path + "/" + name).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Deletes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
