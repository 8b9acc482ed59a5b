#if Hummingbird
import Gateway
import NIOCore

/// The gateway's request body as the `ByteBuffer` sequence a Hummingbird `RequestBody` reads:
/// one buffer per chunk the web server sent, read only as the handler asks, so the body is
/// never held whole here.
struct GatewayRequestBodyBuffers: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let body: GatewayRequestBody

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(chunks: body.makeAsyncIterator())
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: GatewayRequestBody.AsyncIterator

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await chunks.nextChunk() else { return nil }
            return ByteBuffer(bytes: chunk)
        }
    }
}
#endif
