import FastCGI
import NIOCore
import NIOPosix

/// A FastCGI client for tests: the web server's side of one connection, over a real socket.
///
/// It speaks the wire protocol with the project's own `RequestEncoder` and `ResponseDecoder`,
/// and it also sends raw bytes, so hostile tests can write anything. Replies are decoded into
/// `ResponseEvent`s and kept until a test asks for them, by request id or in arrival order.
///
/// The socket is read only while a test waits for something, so a test that stops asking
/// is a client that stops reading (the server sees backpressure), and memory stays bounded by
/// what the test consumes. Every wait is bounded (10 s by default) and throws
/// ``FastCGITestClientError/timedOut(_:)`` instead of hanging.
///
/// ```swift
/// let client = try await FastCGITestClient.connect(unixPath: socket)
/// let response = try await client.perform(.get("/hello"))
/// #expect(response.status == 200 && response.bodyString == "Hello, world!")
/// ```
public final class FastCGITestClient: Sendable {
    /// How long a wait lasts unless told otherwise.
    public static let defaultTimeout: TimeAmount = .seconds(10)

    /// The connection's channel, for tests that need to poke at it.
    public let channel: any Channel
    private let inbox: NIOLoopBound<Inbox>

    private init(channel: any Channel, inbox: NIOLoopBound<Inbox>) {
        self.channel = channel
        self.inbox = inbox
    }

    // The channel outlives a server's half-close (see `connect`), so the client closes it.
    deinit { channel.close(promise: nil) }

    // MARK: Connecting

    /// Connects to a FastCGI server on a Unix socket.
    public static func connect(
        unixPath: String,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> FastCGITestClient {
        try await connect(group: group) { try await $0.connect(unixDomainSocketPath: unixPath).get() }
    }

    /// Connects to a FastCGI server over TCP (tests use loopback only).
    public static func connect(
        host: String,
        port: Int,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> FastCGITestClient {
        try await connect(group: group) { try await $0.connect(host: host, port: port).get() }
    }

    private static func connect(
        group: any EventLoopGroup,
        _ open: (ClientBootstrap) async throws -> any Channel
    ) async throws -> FastCGITestClient {
        // The inbox is made first, so a connection the server closes at once still has one.
        let loop = group.next()
        let inbox = try await loop.submit { NIOLoopBound(Inbox(), eventLoop: loop) }.get()
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.autoRead, value: false)
            // Like a web server: when the application half-closes after answering (it drains
            // input it did not read), keep sending what is left of the request.
            .channelOption(.allowRemoteHalfClosure, value: true)
            // Large reads: each read is one hop for the waiting test, so few hops per megabyte.
            .channelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 256 << 10, maximum: 1 << 20)
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(inbox.value)
                }
            }
        let channel = try await open(bootstrap)
        return FastCGITestClient(channel: channel, inbox: inbox)
    }

    // MARK: Sending

    /// Writes raw bytes (anything at all: hostile tests use this) and waits until they are sent.
    public func send(_ bytes: some Sequence<UInt8>) async throws {
        try await send(ByteBuffer(bytes: bytes))
    }

    /// Writes a buffer and waits until it is handed to the socket.
    public func send(_ buffer: ByteBuffer) async throws {
        try await channel.writeAndFlush(buffer).get()
    }

    /// Writes `bytes` one byte per write (each flushed on its own).
    public func sendOneBytePerWrite(_ bytes: some Sequence<UInt8>) async throws {
        for byte in bytes {
            try await send(CollectionOfOne(byte))
        }
    }

    /// Writes a whole request: BEGIN_REQUEST, PARAMS, STDIN and the end of STDIN.
    public func send(_ request: FastCGITestRequest) async throws {
        try await send(request.encoded())
    }

    /// Writes `bytes` as STDIN records of `request` (no end-of-stream record), waiting for the
    /// socket as it goes: bodies of any size stream without filling memory.
    public func sendStdin(
        _ bytes: [UInt8],
        requestID: UInt16,
        recordSize: Int = 65535,
        paddingLength: UInt8 = 0
    ) async throws {
        var offset = 0
        while offset < bytes.count {
            var buffer = channel.allocator.buffer(capacity: min(bytes.count - offset, 1 << 20) + 4096)
            while offset < bytes.count, buffer.readableBytes < 1 << 20 {
                let end = min(offset + recordSize, bytes.count)
                RequestEncoder.writeRecord(
                    type: RecordType.stdin.rawValue,
                    requestID: requestID,
                    content: bytes[offset..<end],
                    paddingLength: paddingLength,
                    into: &buffer
                )
                offset = end
            }
            try await send(buffer)
        }
    }

    /// Writes the empty STDIN record that ends a request's body.
    public func sendStdinEnd(requestID: UInt16) async throws {
        var buffer = channel.allocator.buffer(capacity: 8)
        RequestEncoder.writeStdinEnd(requestID: requestID, into: &buffer)
        try await send(buffer)
    }

    /// Writes `FCGI_ABORT_REQUEST` for `requestID`.
    public func sendAbort(requestID: UInt16) async throws {
        var buffer = channel.allocator.buffer(capacity: 8)
        RequestEncoder.writeAbortRequest(requestID: requestID, into: &buffer)
        try await send(buffer)
    }

    /// Writes an `FCGI_GET_VALUES` query for `names` (unpadded, on request id 0).
    public func sendGetValues(_ names: [String]) async throws {
        var buffer = channel.allocator.buffer(capacity: 64)
        RequestEncoder.writeGetValues(names, into: &buffer)
        try await send(buffer)
    }

    // MARK: Receiving

    /// The next event in arrival order, whatever its request id.
    public func nextEvent(timeout: TimeAmount = defaultTimeout) async throws -> ResponseEvent {
        try await next(timeout: timeout, description: "any record") { _ in true }
    }

    /// The next event, or nil if none arrives within `window` (for "nothing more is sent" checks).
    public func nextEvent(within window: TimeAmount) async throws -> ResponseEvent? {
        do {
            return try await nextEvent(timeout: window)
        } catch FastCGITestClientError.timedOut {
            return nil
        }
    }

    /// The next event for `requestID` (STDOUT, STDERR or END_REQUEST); other ids' events stay queued.
    public func nextEvent(for requestID: UInt16, timeout: TimeAmount = defaultTimeout) async throws -> ResponseEvent {
        try await next(timeout: timeout, description: "a record for request \(requestID)") {
            $0.requestID == requestID
        }
    }

    /// The events for `requestID` that have arrived (at least one: waits if none has), in order.
    /// Cheaper than ``nextEvent(for:timeout:)`` for long responses: one hop per batch.
    public func nextEvents(
        for requestID: UInt16,
        timeout: TimeAmount = defaultTimeout
    ) async throws -> [ResponseEvent] {
        let inbox = self.inbox
        let batch = try await channel.eventLoop.submit {
            inbox.value.takeAll { $0.requestID == requestID }
        }.get()
        if !batch.isEmpty { return batch }
        return [try await nextEvent(for: requestID, timeout: timeout)]
    }

    /// The next management reply (GET_VALUES_RESULT or UNKNOWN_TYPE, both on id 0).
    public func nextManagementEvent(timeout: TimeAmount = defaultTimeout) async throws -> ResponseEvent {
        try await next(timeout: timeout, description: "a management record") { $0.requestID == 0 }
    }

    /// Collects everything for `requestID` up to and including its END_REQUEST.
    public func response(
        for requestID: UInt16,
        timeout: TimeAmount = defaultTimeout
    ) async throws
        -> FastCGITestResponse
    {
        var response = FastCGITestResponse(requestID: requestID)
        let deadline = NIODeadline.now() + timeout
        while true {
            let left = deadline - .now()
            let batch = try await nextEvents(for: requestID, timeout: max(left, .zero))
            for (index, event) in batch.enumerated() where response.add(event) {
                // Events after END_REQUEST stay queued for later callers (they would be a server bug).
                let rest = Array(batch[(index + 1)...])
                if !rest.isEmpty {
                    let inbox = self.inbox
                    try await channel.eventLoop.submit { inbox.value.putBack(rest) }.get()
                }
                return response
            }
        }
    }

    /// Sends `request` and collects its response.
    public func perform(
        _ request: FastCGITestRequest,
        timeout: TimeAmount = defaultTimeout
    ) async throws
        -> FastCGITestResponse
    {
        try await send(request)
        return try await response(for: request.id, timeout: timeout)
    }

    /// Waits until the server closes the connection (EOF or reset) and returns the events that
    /// arrived and were not yet consumed, so a test can check that nothing unexpected came first.
    @discardableResult
    public func waitForClose(timeout: TimeAmount = defaultTimeout) async throws -> [ResponseEvent] {
        let inbox = self.inbox
        return try await channel.eventLoop.flatSubmit {
            inbox.value.waitForClose(timeout: timeout)
        }.get()
    }

    /// True once the server closed the connection (as far as this client has read).
    public var isClosed: Bool {
        get async {
            let inbox = self.inbox
            return (try? await channel.eventLoop.submit { inbox.value.isClosed }.get()) ?? true
        }
    }

    /// Closes the connection. Safe to call more than once.
    public func close() async {
        try? await channel.close()
    }

    /// Half-closes: the server reads EOF, the client can still read.
    public func shutdownOutput() async throws {
        try await channel.close(mode: .output)
    }

    private func next(
        timeout: TimeAmount,
        description: String,
        where predicate: @escaping @Sendable (ResponseEvent) -> Bool
    ) async throws -> ResponseEvent {
        let inbox = self.inbox
        return try await channel.eventLoop.flatSubmit {
            inbox.value.next(where: predicate, timeout: timeout, description: description)
        }.get()
    }
}

/// The channel handler behind a test client: decodes replies and hands them to waiters.
/// Lives on the channel's event loop; reads from the socket only while someone waits.
private final class Inbox: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private struct Waiter {
        let id: Int
        let predicate: (ResponseEvent) -> Bool
        let promise: EventLoopPromise<ResponseEvent>
        let description: String
        let timeout: Scheduled<Void>
    }

    private var decoder = ResponseDecoder()
    private var pending: [ResponseEvent] = []
    private var waiters: [Waiter] = []
    private var closeWaiters: [(promise: EventLoopPromise<[ResponseEvent]>, timeout: Scheduled<Void>)] = []
    private var failure: FastCGITestClientError?
    private(set) var isClosed = false
    private var context: ChannelHandlerContext?
    private var nextWaiterID = 0

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        do {
            while let event = try decoder.next(from: &buffer) {
                deliver(event)
            }
        } catch {
            failure = .protocolError(error)
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readIfWanted()
    }

    func channelInactive(context: ChannelHandlerContext) {
        serverClosed()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            // Nothing more will arrive; the client may still write.
            serverClosed()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// The server has closed its side: pending waits end, waits for the close succeed.
    private func serverClosed() {
        guard !isClosed else { return }
        isClosed = true
        let waiters = self.waiters
        self.waiters.removeAll()
        for waiter in waiters {
            waiter.timeout.cancel()
            waiter.promise.fail(failure ?? .connectionClosed(waiter.description))
        }
        let closeWaiters = self.closeWaiters
        self.closeWaiters.removeAll()
        let left = pending
        for waiter in closeWaiters {
            waiter.timeout.cancel()
            waiter.promise.succeed(left)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset from the server counts as a close; channelInactive follows.
        print("FastCGITestClient: connection error, closing: \(error)")
        context.close(promise: nil)
    }

    func next(
        where predicate: @escaping (ResponseEvent) -> Bool,
        timeout: TimeAmount,
        description: String
    ) -> EventLoopFuture<ResponseEvent> {
        let loop = context!.eventLoop
        if let index = pending.firstIndex(where: predicate) {
            return loop.makeSucceededFuture(pending.remove(at: index))
        }
        if isClosed {
            return loop.makeFailedFuture(failure ?? .connectionClosed(description))
        }
        let promise = loop.makePromise(of: ResponseEvent.self)
        let id = nextWaiterID
        nextWaiterID += 1
        let timeoutTask = loop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
            let waiter = waiters.remove(at: index)
            waiter.promise.fail(FastCGITestClientError.timedOut(waiter.description))
        }
        waiters.append(
            Waiter(id: id, predicate: predicate, promise: promise, description: description, timeout: timeoutTask)
        )
        readIfWanted()
        return promise.futureResult
    }

    func waitForClose(timeout: TimeAmount) -> EventLoopFuture<[ResponseEvent]> {
        let loop = context!.eventLoop
        if isClosed { return loop.makeSucceededFuture(pending) }
        let promise = loop.makePromise(of: [ResponseEvent].self)
        let timeoutTask = loop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard let index = closeWaiters.firstIndex(where: { $0.promise.futureResult === promise.futureResult })
            else { return }
            closeWaiters.remove(at: index)
            promise.fail(FastCGITestClientError.timedOut("the server to close the connection"))
        }
        closeWaiters.append((promise, timeoutTask))
        readIfWanted()
        return promise.futureResult
    }

    /// Removes and returns every pending event matching `predicate`.
    func takeAll(where predicate: (ResponseEvent) -> Bool) -> [ResponseEvent] {
        guard pending.contains(where: predicate) else { return [] }
        var taken: [ResponseEvent] = []
        pending.removeAll { event in
            guard predicate(event) else { return false }
            taken.append(event)
            return true
        }
        return taken
    }

    /// Returns events to the front of the queue.
    func putBack(_ events: [ResponseEvent]) {
        pending.insert(contentsOf: events, at: 0)
    }

    private func deliver(_ event: ResponseEvent) {
        if let index = waiters.firstIndex(where: { $0.predicate(event) }) {
            let waiter = waiters.remove(at: index)
            waiter.timeout.cancel()
            waiter.promise.succeed(event)
        } else {
            pending.append(event)
        }
    }

    private func readIfWanted() {
        guard !isClosed, !waiters.isEmpty || !closeWaiters.isEmpty, let context else { return }
        context.read()
    }
}
