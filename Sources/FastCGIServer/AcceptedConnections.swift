import NIOCore

/// Tells the server of every connection the moment the listening socket accepts it.
///
/// The connection registers itself only once it is active on its own event loop, a hop or two
/// after the accept, and SwiftNIO closes one (unanswered) whose set-up completes after the
/// listening channel closed. A shutdown that waits for connections still being set up before it
/// closes the listening channel, and before it exits, loses none of them.
final class AcceptedConnections: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let server: ServerState

    init(server: ServerState) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        server.accepted(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }
}
