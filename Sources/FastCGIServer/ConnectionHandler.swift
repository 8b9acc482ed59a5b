import FastCGI
import Gateway
import Logging
import NIOCore

/// Serves one FastCGI connection: decodes records, runs a task per request, encodes replies.
///
/// All state lives on the connection's event loop. Requests run as tasks whose executor is
/// that same loop, so their writes land here without locks or hops. Reading pauses while a
/// request's unread body is over its bound, and response writes wait while the socket is not
/// writable: memory stays bounded both ways.
final class ConnectionHandler<App: GatewayApplication>: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let application: App
    private let server: ServerState
    private let logger: Logger
    private var decoder: RequestDecoder
    private var requests: [UInt16: InFlightRequest] = [:]
    private var context: ChannelHandlerContext?
    private var executor: EventLoopTaskExecutor?
    /// Request bodies currently over their buffer bound; reading is paused while any is.
    private var pausingBodies = 0
    private var readPending = false
    /// Close once no request is in flight (a request without `FCGI_KEEP_CONN` ended, or shutdown).
    private var closeWhenIdle = false
    private var isClosing = false
    /// Our half-close went through: everything we wrote has been handed to the socket.
    private var isOutputClosed = false
    /// Graceful shutdown has begun: idle connections close without waiting for the peer.
    private var isShuttingDown = false
    /// Whether every byte the web server will send for the ended requests has been read (their
    /// stdin ended), so closing cannot cut input short. An aborted request's stdin may still
    /// be on its way, so it counts as not drained.
    private var inputIsDrained = true
    /// When bytes last arrived; the server's idle sweep closes connections idle too long.
    private var lastActivity = NIODeadline.now()
    /// `channelRead` is decoding; requests without `FCGI_KEEP_CONN` that end meanwhile wait in
    /// `endedWhileDecoding` until it is done.
    private var isDecoding = false
    private var endedWhileDecoding: [InFlightRequest] = []
    /// Bytes that arrived while `channelRead` was already decoding: SwiftNIO reads again
    /// inside a failed flush, which an application's write can cause mid-decode. They come
    /// after the rest of the bytes being decoded, so they wait for them.
    private var inputArrivedWhileDecoding: [ByteBuffer] = []
    private var writabilityWaiters: [(request: ObjectIdentifier, continuation: CheckedContinuation<Void, any Error>)] =
        []

    init(application: App, server: ServerState) {
        self.application = application
        self.server = server
        self.logger = server.logger
        self.decoder = RequestDecoder(
            limits: DecoderLimits(
                maxParamsBytes: server.limits.maxParamsBytes,
                maxParamsPairs: server.limits.maxParamsPairs,
                maxActiveRequests: server.limits.maxRequestsPerConnection + 1,
                maxPendingParamsBytes: server.limits.maxParamsBytesPerConnection
            )
        )
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it would make a cycle that outlives the channel.
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let allowed = server.allowedPeers, !allowed.allows(context.channel.remoteAddress) {
            logger.warning(
                "closing connection from \(peer(context)): address not in FCGI_WEB_SERVER_ADDRS"
            )
            context.close(promise: nil)
            return
        }
        guard server.register(context.channel) else {
            logger.warning(
                "closing connection: \(server.isShuttingDown ? "shutting down" : "connection limit reached")"
            )
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.unregister(context.channel)
        isClosing = true
        let interrupted = requests.values
        requests.removeAll()
        endedWhileDecoding.removeAll()
        for request in interrupted where !request.isEnded {
            request.isEnded = true
            request.body.fail(RequestBodyIncomplete(reason: .connectionClosed))
            request.task?.cancel()
            server.releaseRequest()
        }
        let waiters = writabilityWaiters
        writabilityWaiters.removeAll()
        for waiter in waiters { waiter.continuation.resume(throwing: RequestInterruption.connectionClosed) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isClosing else { return }
        lastActivity = .now()
        var buffer = unwrapInboundIn(data)
        guard !isDecoding else {
            inputArrivedWhileDecoding.append(buffer)
            return
        }
        isDecoding = true
        defer {
            isDecoding = false
            inputArrivedWhileDecoding.removeAll()
            releaseRequestsEndedWhileDecoding()
        }
        do {
            while true {
                while let event = try decoder.next(from: &buffer) {
                    handle(event, context: context)
                    if isClosing { return }
                }
                guard !inputArrivedWhileDecoding.isEmpty else { break }
                buffer = inputArrivedWhileDecoding.removeFirst()
            }
        } catch {
            logger.error("closing FastCGI connection from \(peer(context)) on malformed input: \(error)")
            closeNow(context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            for waiter in waiters { waiter.continuation.resume() }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            if isClosing {
                // Draining after our half-close is over: the web server has closed its side.
                context.close(promise: nil)
            } else {
                // The web server has sent all it will; finish what is in flight, then close.
                closeWhenIdle = true
                endRequestsWaitingForInput(context: context)
                closeIfIdle()
            }
        case is GracefulShutdownRequested:
            closeGracefully()
        case let check as IdleCheck:
            // Requests whose params never ended have no application to wait for: a peer that
            // opens requests and goes quiet holds nothing longer than an idle one.
            guard !isClosing, lastActivity < check.idleSince, requests.values.allSatisfy({ !$0.isStarted }) else {
                return
            }
            if requests.isEmpty {
                logger.debug("closing idle connection from \(peer(context))")
            } else {
                logger.warning(
                    "closing connection from \(peer(context)): \(requests.count) request(s) idle with their params unfinished"
                )
            }
            closeNow(context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Once the web server has closed its side, requests whose params never ended cannot
    /// start, and bodies that never ended cannot finish: end those, fail these, instead of
    /// holding their slots until shutdown.
    private func endRequestsWaitingForInput(context: ChannelHandlerContext) {
        for request in requests.values where !request.isEnded {
            if !request.isStarted {
                logger.info("request \(request.id): the web server closed its side before the params ended")
                end(request, appStatus: 1, context: context)
            } else if !request.stdinEnded {
                if request.body.fail(RequestBodyIncomplete(reason: .connectionClosed)) { bodyDrained() }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if pausingBodies > 0 {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Records

    private func handle(_ event: RequestEvent, context: ChannelHandlerContext) {
        switch event {
        case .begin(let id, let role, let keepConnection):
            begin(id: id, role: role, keepConnection: keepConnection, context: context)
        case .params(let id, let pairs):
            guard let request = requests[id], !request.isStarted else { return }
            start(request, variables: CGIVariables(storage: pairs.storage, layout: pairs.layout), context: context)
        case .stdin(let id, let bytes):
            // An ended request's body is no longer read (a 413 answered, an early answer).
            guard let request = requests[id], !request.isEnded else { return }
            let maximum = server.limits.maxBodyBytes
            let wasWithinLimit = request.stdinBytes <= maximum
            request.stdinBytes += bytes.readableBytes
            guard request.stdinBytes <= maximum else {
                // Only a body without a CONTENT_LENGTH gets here (a larger declared one is
                // answered 413 up front): its reader gets the error, which becomes a 413 too.
                // Once over, the rest of the body is dropped.
                if wasWithinLimit {
                    logger.warning("request \(id): body over the limit of \(maximum) bytes")
                    if request.body.fail(RequestBodyTooLarge(maximum: maximum)) { bodyDrained() }
                }
                return
            }
            if request.body.append(bytes) { pausingBodies += 1 }
        case .stdinEnd(let id):
            guard let request = requests[id] else { return }
            request.stdinEnded = true
            request.body.finish()
        case .data, .dataEnd:
            // Filter role is refused at BEGIN_REQUEST, so no request here takes DATA.
            return
        case .abort(let id):
            guard let request = requests[id] else { return }
            request.task?.cancel()
            if request.body.fail(RequestBodyIncomplete(reason: .aborted)) { bodyDrained() }
            resumeWaiters(of: request, throwing: RequestInterruption.aborted)
            end(request, appStatus: 1, context: context)
        case .getValues(let names):
            var buffer = context.channel.allocator.buffer(capacity: 128)
            ResponseEncoder.writeGetValuesResult(values(for: names), into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .unknownManagementRecord(let type):
            var buffer = context.channel.allocator.buffer(capacity: 16)
            ResponseEncoder.writeUnknownType(type, into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }

    private func begin(id: UInt16, role: Role, keepConnection: Bool, context: ChannelHandlerContext) {
        guard server.roles.contains(role) else {
            logger.info("refusing request \(id): unknown role \(role.rawValue)")
            refuse(id: id, status: .unknownRole, keepConnection: keepConnection, context: context)
            return
        }
        if isShuttingDown {
            // Only a web server multiplexing on a busy connection can still send one; serving
            // it could keep the connection busy past the grace period and cut it mid-request.
            logger.info("refusing request \(id): shutting down")
            refuse(id: id, status: .overloaded, keepConnection: keepConnection, context: context)
            return
        }
        let inFlight = requests.count - endedWhileDecoding.count
        guard inFlight < server.limits.maxRequestsPerConnection, server.tryAcquireRequest() else {
            logger.warning("refusing request \(id): overloaded")
            refuse(id: id, status: .overloaded, keepConnection: keepConnection, context: context)
            return
        }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let body = StdinBodySource(highWatermark: server.limits.bodyBufferBytes) {
            loopBoundSelf.eventLoop.execute { loopBoundSelf.value.bodyDrained() }
        }
        requests[id] = InFlightRequest(id: id, keepConnection: keepConnection, body: body)
    }

    private func refuse(id: UInt16, status: ProtocolStatus, keepConnection: Bool, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 16)
        ResponseEncoder.writeEndRequest(requestID: id, appStatus: 0, protocolStatus: status, into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        decoder.endRequest(id)
        if !keepConnection {
            inputIsDrained = false  // its params and stdin may still be on their way
            closeWhenIdle = true
            closeIfIdle()
        }
    }

    private func values(for names: [String]) -> [(String, String)] {
        names.compactMap { name in
            switch name {
            case "FCGI_MAX_CONNS": (name, String(server.limits.maxConnections))
            case "FCGI_MAX_REQS": (name, String(server.limits.maxRequests))
            case "FCGI_MPXS_CONNS": (name, "1")
            default: nil
            }
        }
    }

    // MARK: Running the application

    private func start(_ request: InFlightRequest, variables: CGIVariables, context: ChannelHandlerContext) {
        request.isStarted = true
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopBoundRequest = NIOLoopBound(request, eventLoop: context.eventLoop)
        let logger = self.logger
        // The id of this request in the application's logger and in the server's lines.
        let requestID = GatewayRequestID(variables: variables)
        let errors = ErrorStream { message in
            if Task.isCancelled {
                // The web server aborted the request or closed the connection (its client went
                // away): what is reported now is that cancellation, not a fault of the app, and
                // nobody is left to receive FCGI_STDERR.
                logger.debug("request cancelled: \(message.dropLast())", metadata: ["request-id": "\(requestID)"])
                return
            }
            logger.warning("application: \(message.dropLast())", metadata: ["request-id": "\(requestID)"])
            // On the loop (the usual case: the request's own task) write at once; a deferred
            // write would land after the request ended (a thrown error ends it right away) and
            // be dropped, so the web server's error log would never see it.
            if loopBoundSelf.eventLoop.inEventLoop {
                loopBoundSelf.value.writeStderr(message, request: loopBoundRequest.value)
            } else {
                loopBoundSelf.eventLoop.execute {
                    loopBoundSelf.value.writeStderr(message, request: loopBoundRequest.value)
                }
            }
        }
        var environ = Environ(
            variables: variables,
            errors: errors,
            logger: logger,
            requestID: requestID,
            multithread: true,
            multiprocess: server.multiprocess,
            runOnce: false
        )
        let contentLength = environ.contentLength
        environ.input = GatewayRequestBody(source: request.body, contentLength: contentLength)
        let application: any GatewayApplication
        if let contentLength, contentLength > server.limits.maxBodyBytes {
            environ.logger.warning("body of \(contentLength) bytes over the limit, answering 413")
            environ.input = .empty
            let maximum = server.limits.maxBodyBytes
            application = ClosureApplication { _ in throw RequestBodyTooLarge(maximum: maximum) }
        } else {
            application = self.application
        }
        let executor = self.executor!
        request.task = Task.immediate(executorPreference: executor) {
            var output = FastCGIResponseOutput(connection: loopBoundSelf, request: loopBoundRequest)
            let outcome = await ResponseDriver.run(application, environ: environ, output: &output)
            loopBoundSelf.value.complete(loopBoundRequest.value, outcome: outcome)
        }
        // The request may have ended while its task ran up to its first suspension (the
        // connection closed under a write): the cancellation it missed is delivered now.
        if request.isEnded { request.task?.cancel() }
    }

    /// Sends response bytes for `request` as `FCGI_STDOUT`; flushes unless more follows at once.
    func writeStdout(_ head: [UInt8], _ body: [UInt8], request: InFlightRequest, flush: Bool) throws {
        guard let context, !request.isEnded, !isClosing else {
            throw request.isEnded ? RequestInterruption.requestEnded : RequestInterruption.connectionClosed
        }
        let records = (head.count + body.count) / 65535 + 2
        var buffer = context.channel.allocator.buffer(capacity: head.count + body.count + records * 16)
        ResponseEncoder.writeStream(.stdout, requestID: request.id, head: head, body: body, into: &buffer)
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    /// Whether the socket takes more bytes now; response writers wait while it does not.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Suspends a response writer until the socket drains, the request ends or the connection closes.
    nonisolated(nonsending) func waitUntilWritable(_ request: InFlightRequest) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if request.isEnded || isClosing {
                continuation.resume(
                    throwing: request.isEnded ? RequestInterruption.requestEnded : RequestInterruption.connectionClosed
                )
            } else if isWritable {
                continuation.resume()
            } else {
                writabilityWaiters.append((ObjectIdentifier(request), continuation))
            }
        }
    }

    private func writeStderr(_ message: String, request: InFlightRequest) {
        guard let context, !request.isEnded, !isClosing else { return }
        var buffer = context.channel.allocator.buffer(capacity: message.utf8.count + 16)
        ResponseEncoder.writeStream(.stderr, requestID: request.id, bytes: message.utf8, into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// The application's task finished: end the request unless an abort already did.
    ///
    /// A response cut short after its head went out is not ended: `FCGI_END_REQUEST` would
    /// make it look complete (nginx ignores appStatus and closes a chunked body cleanly).
    /// The connection is closed instead, after the bytes already written and an invalid record
    /// header, so the web server sees a broken upstream and cuts the client's response too. Other
    /// requests multiplexed on the connection are cut with it: FastCGI has no other way to
    /// fail one request's stream.
    func complete(_ request: InFlightRequest, outcome: ResponseOutcome) {
        guard let context, !request.isEnded else { return }
        switch outcome {
        case .completed, .applicationFailed(headSent: false):
            end(request, appStatus: 0, context: context)
        case .applicationFailed(headSent: true), .outputFailed:
            request.isEnded = true
            server.releaseRequest()
            if request.body.fail(RequestInterruption.requestEnded) { bodyDrained() }
            guard !isClosing else { return }
            isClosing = true
            let channel = context.channel
            // A peer that never reads would hold the flush forever: close after 5 s regardless.
            let timeout = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
            channel.closeFuture.whenComplete { _ in timeout.cancel() }
            // nginx without fastcgi_keep_conn takes the end of the connection for the end of the
            // response: a record header of version 0, which every FastCGI client rejects, makes
            // it (and any peer) fail the response instead of ending it cleanly.
            var marker = channel.allocator.buffer(capacity: 8)
            marker.writeBytes([0, 0, UInt8(request.id >> 8), UInt8(request.id & 0xFF), 0, 0, 0, 0])
            context.writeAndFlush(wrapOutboundOut(marker)).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    /// Ends `request`: stdout terminated, `FCGI_END_REQUEST`, id released for reuse.
    private func end(_ request: InFlightRequest, appStatus: UInt32, context: ChannelHandlerContext) {
        guard !request.isEnded else { return }
        request.isEnded = true
        var buffer = context.channel.allocator.buffer(capacity: 24)
        ResponseEncoder.writeStreamEnd(.stdout, requestID: request.id, into: &buffer)
        ResponseEncoder.writeEndRequest(
            requestID: request.id,
            appStatus: appStatus,
            protocolStatus: .requestComplete,
            into: &buffer
        )
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        server.releaseRequest()
        if request.body.fail(RequestBodyIncomplete(reason: .requestEnded)) { bodyDrained() }
        if isDecoding, !request.keepConnection {
            // A request that ends while its own records are being decoded (a quick answer runs
            // inside `channelRead`) and then closes the connection stays known to the decoder
            // until the rest of this read is decoded: its FCGI_STDIN end is usually in the same
            // bytes, and seeing it spares the half-close and drain. A kept connection releases
            // the id at once, so that a next request may reuse it.
            endedWhileDecoding.append(request)
        } else {
            release(request)
        }
    }

    /// Forgets an ended request: its id may be reused, and the connection may close.
    private func release(_ request: InFlightRequest) {
        if requests[request.id] === request {
            requests[request.id] = nil
            decoder.endRequest(request.id)
        }
        if !request.keepConnection { closeWhenIdle = true }
        if !request.stdinEnded { inputIsDrained = false }
        closeIfIdle()
    }

    private func releaseRequestsEndedWhileDecoding() {
        guard !endedWhileDecoding.isEmpty else { return }
        let ended = endedWhileDecoding
        endedWhileDecoding.removeAll(keepingCapacity: true)
        for request in ended where !isClosing { release(request) }
    }

    private func resumeWaiters(of request: InFlightRequest, throwing error: any Error) {
        let key = ObjectIdentifier(request)
        guard writabilityWaiters.contains(where: { $0.request == key }) else { return }
        let resumed = writabilityWaiters.filter { $0.request == key }
        writabilityWaiters.removeAll { $0.request == key }
        for waiter in resumed { waiter.continuation.resume(throwing: error) }
    }

    // MARK: Flow control and closing

    /// A request body that held reading paused has drained (or ended).
    private func bodyDrained() {
        pausingBodies -= 1
        if pausingBodies == 0, readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Asks the connection to close once nothing is in flight (graceful shutdown).
    func closeGracefully() {
        isShuttingDown = true
        closeWhenIdle = true
        if isClosing, isOutputClosed, let context {
            // Already half-closed and waiting for the web server: do not make shutdown wait too.
            context.close(promise: nil)
        }
        closeIfIdle()
    }

    private func closeIfIdle() {
        guard closeWhenIdle, requests.isEmpty, !isClosing, let context else { return }
        isClosing = true
        if inputIsDrained, decoder.isAtRecordBoundary {
            // Nothing more is coming from the web server: close as soon as what we wrote is out.
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        // Half-close first, so unread input from the web server is drained instead of
        // answered with a reset that could cut the response it is still reading.
        let channel = context.channel
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.close(mode: .output).whenComplete { _ in
            let handler = loopBoundSelf.value
            handler.isOutputClosed = true
            if handler.isShuttingDown {
                // Shutting down: everything is written, so close now rather than wait for kept
                // connections the web server would hold open (a process manager kills us in 5 s).
                channel.close(promise: nil)
                return
            }
            // The timer is cancelled once the channel is closed: it holds the channel, and
            // with it the connection's buffers, for its whole 5 s otherwise.
            let timeout = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
            channel.closeFuture.whenComplete { _ in timeout.cancel() }
        }
        context.read()
    }

    private func peer(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.map { "\($0)" } ?? "a Unix socket peer"
    }

    private func closeNow(context: ChannelHandlerContext) {
        isClosing = true
        context.close(promise: nil)
    }
}

/// A request's `ResponseOutput`: response bytes become `FCGI_STDOUT` records on its connection.
struct FastCGIResponseOutput<App: GatewayApplication>: ResponseOutput {
    let connection: NIOLoopBound<ConnectionHandler<App>>
    let request: NIOLoopBound<InFlightRequest>

    nonisolated(nonsending) mutating func send(head: [UInt8], body: [UInt8], isLast: Bool) async throws {
        let connection = self.connection
        let request = self.request
        guard connection.eventLoop.inEventLoop else {
            // Only reached when an application moved its writer off the request's executor.
            try await connection.eventLoop.flatSubmit {
                do {
                    try connection.value.writeStdout(head, body, request: request.value, flush: true)
                    return connection.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return connection.eventLoop.makeFailedFuture(error)
                }
            }.get()
            return
        }
        try connection.value.writeStdout(head, body, request: request.value, flush: !isLast)
        if !isLast, !connection.value.isWritable {
            try await connection.value.waitUntilWritable(request.value)
        }
    }
}
