import Gateway

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the request body from a file descriptor in chunks of up to 64 KiB, never asking
/// for more than the bytes `CONTENT_LENGTH` announced (so it never blocks on data that will
/// not come).
///
/// Web servers running CGI (Apache's mod_cgid, fcgiwrap) write the whole request body to the
/// program before they read any of its output. An application that writes its response before
/// reading its whole body (an echo, a streaming transform) would deadlock them once both pipes
/// filled. So while a response write cannot proceed and body bytes are waiting,
/// ``spoolNextChunk()`` reads them into a spool (the first 1 MiB in memory, the rest in an
/// unlinked temporary file) and later reads are served from there. Only bytes the web server
/// pushes while the output is blocked are spooled: an application that never reads its body
/// and answers briefly costs nothing, and the spool never exceeds the declared length, which
/// the body limit bounds.
final class DescriptorBodySource: RequestBodySource, @unchecked Sendable {
    // Only the one task serving the request reads the body and writes the response, one
    // call at a time, so the state needs no lock.
    let fd: Int32
    private let length: Int
    /// Bytes read from `fd` so far.
    private var received = 0
    /// The spool: bytes read ahead for the application, in memory and then in `spoolFile`.
    private var memory: [UInt8] = []
    private var memoryOffset = 0
    private var spoolFile: Int32 = -1
    private var fileWritten = 0
    private var fileRead = 0
    /// The error that ended spooling, thrown once the application reached it.
    private var pendingError: RequestBodyIncomplete?
    static let memoryLimit = 1 << 20
    static let chunkSize = 65536

    init(fd: Int32, length: Int) {
        self.fd = fd
        self.length = length
    }

    deinit {
        if spoolFile >= 0 { close(spoolFile) }
    }

    /// Whether every body byte was read from the descriptor (or reading it failed).
    var isDrained: Bool { received == length || pendingError != nil }

    nonisolated(nonsending) func read() async throws -> [UInt8]? {
        try nextChunk()
    }

    func nextChunk() throws -> [UInt8]? {
        if memoryOffset < memory.count {
            let end = min(memory.count, memoryOffset + Self.chunkSize)
            defer {
                memoryOffset = end
                if end == memory.count {
                    memory = []
                    memoryOffset = 0
                }
            }
            return Array(memory[memoryOffset..<end])
        }
        if fileRead < fileWritten {
            let wanted = min(Self.chunkSize, fileWritten - fileRead)
            let chunk = try readChunk(from: spoolFile, count: wanted, at: fileRead)
            fileRead += chunk.count
            return chunk
        }
        if let pendingError { throw pendingError }
        let wanted = min(Self.chunkSize, length - received)
        guard wanted > 0 else { return nil }
        let chunk = try readChunk(from: fd, count: wanted, at: nil)
        received += chunk.count
        return chunk
    }

    /// Reads the next chunk of the body from the descriptor into the spool (call when the
    /// descriptor is readable). A failure is kept and thrown once the application reaches it.
    func spoolNextChunk() {
        guard received < length, pendingError == nil else { return }
        let chunk: [UInt8]
        do {
            chunk = try readChunk(from: fd, count: min(Self.chunkSize, length - received), at: nil)
        } catch {
            pendingError = error
            return
        }
        received += chunk.count
        if memoryOffset > 0 {
            // What the application already read leaves memory, so the in-memory part of the
            // spool stays within `memoryLimit` however reads and writes alternate.
            memory.removeFirst(memoryOffset)
            memoryOffset = 0
        }
        if spoolFile < 0, memory.count + chunk.count <= Self.memoryLimit {
            memory += chunk
            return
        }
        if spoolFile < 0 {
            spoolFile = openTemporaryFile()
            if spoolFile < 0 {
                pendingError = RequestBodyIncomplete(
                    reason: .readFailed(errno: errno),
                    received: received,
                    expected: length
                )
                return
            }
        }
        let failure = chunk.withUnsafeBytes { bytes in
            writeAll(spoolFile, bytes, UnsafeRawBufferPointer(start: nil, count: 0), offset: fileWritten)
        }
        if failure != 0 {
            pendingError = RequestBodyIncomplete(
                reason: .readFailed(errno: failure),
                received: received,
                expected: length
            )
            return
        }
        fileWritten += chunk.count
    }

    /// Reads and drops what is left of the body on the descriptor (nothing is kept), so the
    /// process exits with its input consumed; stops at the end of the input or an error.
    func discardRemaining() {
        guard pendingError == nil else { return }
        var buffer = [UInt8](repeating: 0, count: Self.chunkSize)
        while received < length {
            let wanted = min(buffer.count, length - received)
            let count = buffer.withUnsafeMutableBytes { readDescriptor(fd, $0.baseAddress, wanted) }
            if count > 0 {
                received += count
            } else if count < 0, errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    /// One `read(2)` (or `pread(2)` at `offset`) of up to `count` bytes, retried on `EINTR`;
    /// throws when it fails or finds the end of the input early.
    private func readChunk(from fd: Int32, count: Int, at offset: Int?) throws(RequestBodyIncomplete) -> [UInt8] {
        var failure: Int32 = 0
        let chunk = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            while true {
                let result =
                    offset.map { pread(fd, buffer.baseAddress, count, off_t($0)) }
                    ?? readDescriptor(fd, buffer.baseAddress, count)
                if result >= 0 {
                    initialized = result
                    return
                }
                if errno != EINTR {
                    failure = errno
                    initialized = 0
                    return
                }
            }
        }
        guard failure == 0, !chunk.isEmpty else {
            throw RequestBodyIncomplete(
                reason: failure == 0 ? .endOfInput : .readFailed(errno: failure),
                received: received,
                expected: length
            )
        }
        return chunk
    }

    /// A new, already unlinked file in `$TMPDIR` (or `/tmp`).
    private func openTemporaryFile() -> Int32 {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((directory + "/swift-gateway-body-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        if fd >= 0 { unlink(template) }
        return fd
    }
}
