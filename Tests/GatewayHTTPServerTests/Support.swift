import Foundation
import Gateway
import GatewayHTTPServer
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Runs `application` on a `GatewayHTTPServer` on 127.0.0.1 and a kernel-chosen port for
/// the duration of `body`, which gets the port; the server is stopped however `body` ends.
func withHTTPServer<App: GatewayApplication>(
    _ application: App,
    limits: HTTPServerLimits = HTTPServerLimits(),
    _ body: (Int) async throws -> Void
) async throws {
    var logger = Logger(label: "test-http-server")
    logger.logLevel = .warning
    let server = GatewayHTTPServer(application: application, host: "127.0.0.1", port: 0, logger: logger, limits: limits)
    let task = Task { try await server.run() }
    do {
        let address = try await server.localAddress
        try await body(address.port!)
    } catch {
        task.cancel()
        _ = await task.result
        throw error
    }
    task.cancel()
    _ = await task.result
}

/// A raw TCP connection to the server, for what the one-shot client cannot show: responses
/// arriving piece by piece, kept connections, a client that goes away mid-response. Every
/// test using it has a time limit, which bounds its waits.
struct RawConnection: ~Copyable {
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await outbound.write(bytes)
    }

    /// The next bytes from the server; nil at the end of the stream.
    mutating func receive() async throws -> ByteBuffer? {
        try await inbound.next()
    }

    /// Reads until `text` has arrived (or the stream ends), returning everything read.
    mutating func receive(until text: String) async throws -> String {
        var received = ""
        while !received.contains(text) {
            guard let bytes = try await receive() else { break }
            received += String(buffer: bytes)
        }
        return received
    }

    /// Reads until the server closes the connection, returning everything read.
    mutating func receiveAll() async throws -> String {
        var received = ""
        while let bytes = try await receive() { received += String(buffer: bytes) }
        return received
    }
}

/// Connects to 127.0.0.1:`port` for the duration of `body`; the connection closes when it returns.
func withConnection(port: Int, _ body: (inout RawConnection) async throws -> Void) async throws {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    try await channel.executeThenClose { inbound, outbound in
        var connection = RawConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound)
        try await body(&connection)
    }
}

/// Resident memory of this process, from `/proc/self/statm`.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * 4096
}

/// A flag the test and the application share.
final class Flag: Sendable {
    private let state = Mutex<(set: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func raise() {
        let waiters = state.withLock { state in
            state.set = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var isRaised: Bool { state.withLock { $0.set } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if state.set { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

struct Boom: Error {}
