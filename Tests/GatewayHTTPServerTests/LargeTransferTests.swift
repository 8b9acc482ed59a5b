import Gateway
import GatewayHTTPServer
import NIOCore
import Testing

/// 64 MiB each way through the development server, with the process's memory flat: bodies
/// stream with backpressure instead of being held.
@Suite("Large bodies", .serialized, .timeLimit(.minutes(3)))
struct LargeTransferTests {
    static let size = 64 << 20
    static let chunk = 64 << 10
    /// Well under the body size: holding either body whole would pass it.
    static let allowedGrowth = 24 << 20

    @Test("a 64 MiB upload reaches the application as it arrives")
    func upload() async throws {
        let app = ClosureApplication { environ in
            // Slower than the client, so that without backpressure the body would pile up.
            var total = 0
            var nextPause = 1 << 20
            for try await chunk in environ.input {
                total += chunk.count
                if total >= nextPause {
                    nextPause += 1 << 20
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            return .text("\(total)")
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await Self.upload(through: &connection)
            }
        }
    }

    static func upload(through connection: inout RawConnection) async throws {
        let before = residentBytes()
        var peak = before
        try await connection.send(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(Self.size)\r\nConnection: close\r\n\r\n"
        )
        let block = ByteBuffer(repeating: UInt8(ascii: "u"), count: Self.chunk)
        for index in 0..<(Self.size / Self.chunk) {
            try await connection.send(block)
            if index % 64 == 0 { peak = max(peak, residentBytes()) }
        }
        peak = max(peak, residentBytes())
        let response = try await connection.receiveAll()
        #expect(response.hasSuffix("\r\n\r\n\(Self.size)"))
        #expect(peak - before < Self.allowedGrowth, "memory grew by \(peak - before) bytes")
    }

    @Test("a 64 MiB streamed download leaves as the client reads it")
    func download() async throws {
        let app = ClosureApplication { _ in
            GatewayResponse(
                body: GatewayResponseBody { writer in
                    let block = [UInt8](repeating: UInt8(ascii: "d"), count: LargeTransferTests.chunk)
                    for _ in 0..<(LargeTransferTests.size / LargeTransferTests.chunk) { try await writer.write(block) }
                }
            )
        }
        try await withHTTPServer(app) { port in
            try await withConnection(port: port) { connection in
                try await Self.download(through: &connection)
            }
        }
    }

    static func download(through connection: inout RawConnection) async throws {
        let before = residentBytes()
        var peak = before
        try await connection.send("GET /download HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        var received = 0
        var reads = 0
        var tail: [UInt8] = []
        while let bytes = try await connection.receive() {
            received += bytes.readableBytes
            tail = Array((tail + bytes.readableBytesView).suffix(5))
            reads += 1
            if reads % 64 == 0 { peak = max(peak, residentBytes()) }
        }
        // The body plus the head and the chunk framing of 1024 chunks.
        #expect(received > Self.size)
        #expect(received < Self.size + 64 << 10)
        #expect(tail == Array("0\r\n\r\n".utf8))
        #expect(peak - before < Self.allowedGrowth, "memory grew by \(peak - before) bytes")
    }
}
