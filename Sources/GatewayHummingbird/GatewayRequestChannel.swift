#if Hummingbird
public import NIOCore
import Synchronization

/// The `Channel` a Hummingbird context built from `ApplicationRequestContextSource` sees
/// (`BasicRequestContext`, and most apps' own contexts): the one request the gateway passes
/// on, since the web server, not the app, owns the client's connection.
///
/// It answers what handlers ask of a channel: `remoteAddress` (`REMOTE_ADDR`/`REMOTE_PORT`),
/// `localAddress` (`SERVER_ADDR`/`SERVER_PORT`), an `eventLoop` for futures (one of NIO's
/// shared loops), an allocator, `closeFuture`, and `isActive`. It carries no bytes: the
/// request and response bodies go through `Request.body` and `ResponseBody`, so a write or
/// a close through the pipeline fails with `ChannelError.operationUnsupported`.
public final class GatewayRequestChannel: Channel, ChannelCore, @unchecked Sendable {
    // @unchecked: every stored property is a `let` of a Sendable value or an atomic, but for
    // the pipeline, set once in init and confined by NIO to `eventLoop` itself.

    /// One of NIO's shared event loops, for handlers that make or chain futures.
    public let eventLoop: any EventLoop
    /// The client's address, from `REMOTE_ADDR` and `REMOTE_PORT`.
    public let remoteAddress: SocketAddress?
    /// The address the web server accepted the request on, from `SERVER_ADDR` and `SERVER_PORT`.
    public let localAddress: SocketAddress?
    /// A plain allocator: buffers are not pooled per request.
    public let allocator = ByteBufferAllocator()
    /// Succeeds when the gateway finished the request (after its response).
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    /// An empty pipeline: nothing flows through it.
    public var pipeline: ChannelPipeline { _pipeline }
    /// No parent: the request's connection belongs to the web server.
    public var parent: (any Channel)? { nil }
    /// Always writable: writes fail, so nothing ever waits for them.
    public var isWritable: Bool { true }
    /// Whether the request is still being answered.
    public var isActive: Bool { !finished.load(ordering: .acquiring) }
    /// Itself: a channel that moves no bytes needs no separate core.
    public var _channelCore: any ChannelCore { self }

    private let closePromise: EventLoopPromise<Void>
    private let finished = Atomic<Bool>(false)
    private var _pipeline: ChannelPipeline!

    /// A channel for the request from `remote` to `local`, its futures on `eventLoop`.
    public init(remoteAddress: SocketAddress?, localAddress: SocketAddress?, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.closePromise = eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    /// Ends the channel: `closeFuture` succeeds and `isActive` turns false.
    /// Safe to call more than once; the channel also finishes when it is released, so that its
    /// promise is never leaked (NIO traps on a leaked promise in debug builds).
    public func finish() {
        if finished.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            closePromise.succeed()
        }
    }

    deinit {
        finish()
    }

    /// No options can be set on a request.
    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    /// No options can be read from a request.
    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    // ChannelCore: every operation that would move bytes or change the connection fails.

    /// The web server's address for this request (`SERVER_ADDR`/`SERVER_PORT`), when it sent one.
    public func localAddress0() throws -> SocketAddress {
        guard let localAddress else { throw ChannelError.unknownLocalAddress }
        return localAddress
    }
    /// The client's address (`REMOTE_ADDR`/`REMOTE_PORT`), when the web server sent one.
    public func remoteAddress0() throws -> SocketAddress {
        guard let remoteAddress else { throw ChannelError.operationUnsupported }
        return remoteAddress
    }
    /// Fails: this channel only describes a gateway request; it never joins an event loop.
    public func register0(promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    /// Fails: this channel only describes a gateway request; it never joins an event loop.
    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    /// Fails: the web server owns the connection, not this channel.
    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    /// Fails: the web server owns the connection, not this channel.
    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    /// Fails: responses go through the gateway's response writer, never through this channel.
    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    /// Does nothing: nothing is ever written through this channel.
    public func flush0() {}
    /// Does nothing: the request body arrives through the gateway, not through this channel.
    public func read0() {}
    /// Fails: the gateway ends the request, not Hummingbird.
    public func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    /// Fails: there is no pipeline behind this channel to take events.
    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    /// Does nothing: no pipeline reads from this channel.
    public func channelRead0(_ data: NIOAny) {}
    /// Does nothing: errors reach the gateway through the responder's thrown error.
    public func errorCaught0(error: any Error) {}
}

extension GatewayRequestChannel {
    /// The address `host` and `port` name, nil when either is missing or not numeric.
    static func address(host: String?, port: String?) -> SocketAddress? {
        guard let host, let port, let number = Int(port), (0...65535).contains(number) else { return nil }
        return try? SocketAddress(ipAddress: host, port: number)
    }
}
#endif
