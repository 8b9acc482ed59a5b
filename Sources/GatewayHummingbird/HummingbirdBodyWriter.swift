#if Hummingbird
import Gateway
import HTTPTypes
import Hummingbird
import NIOCore

/// The gateway's response body writer, held by reference so that it comes back after
/// Hummingbird's `ResponseBody.write(_:)`, which consumes the writer it is given.
///
/// `@unchecked Sendable`: `ResponseBody.write(_:)` runs on the global executor, so the box
/// crosses to it; but one task uses it at a time: the gateway's body function hands it over
/// and reads the writer back only after that call returned.
final class GatewayResponseBodyWriterBox: @unchecked Sendable {
    var writer: any GatewayResponseBodyWriter

    init(_ writer: any GatewayResponseBodyWriter) {
        self.writer = writer
    }
}

/// A Hummingbird `ResponseBodyWriter` that writes through the gateway's writer: each buffer
/// reaches the web server before `write` returns, so Hummingbird's streaming handlers get the
/// gateway's backpressure. Trailers have no place in a CGI or FastCGI response and are dropped.
struct HummingbirdBodyWriter: ResponseBodyWriter {
    let destination: GatewayResponseBodyWriterBox

    mutating func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        try await destination.writer.write(buffer.withUnsafeReadableBytes { Array($0) })  // one memcpy
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
#endif
