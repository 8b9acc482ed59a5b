import Gateway
import Logging
import NIOCore
import NIOHTTP1

/// Serves one HTTP/1.1 connection: a request at a time (pipelined requests wait their turn),
/// each run as a task on the connection's event loop through `ResponseDriver`, as the
/// FastCGI server runs them.
///
/// Reading pauses while a request's unread body is over its bound and while a response is
/// being written; response writes wait while the socket is not writable. Memory stays
/// bounded both ways.
final class HTTPConnectionHandler<App: GatewayApplication>: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let application: App
    private let server: HTTPServerState
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var executor: EventLoopTaskExecutor?
    private var current: HTTPExchange?
    /// Parts of a pipelined next request, held until the current exchange is over. Bounded:
    /// reading stops once a request has ended, so at most one read's worth waits here.
    private var queued: [HTTPServerRequestPart] = []
    private var readPending = false
    private var isClosing = false
    private var isShuttingDown = false
    /// The response is out and the output shut: input is read and dropped until the client
    /// closes or the lingering time is over.
    private var isLingering = false
    private var writabilityWaiter: CheckedContinuation<Void, any Error>?
    /// When bytes last arrived: a request's body may pause no longer than the timeout.
    private var lastActivity = NIODeadline.now()
    /// When the connection started waiting for its next request (opened, or a response
    /// ended): the whole head must arrive within the timeout, however slowly it trickles.
    private var waitingSince = NIODeadline.now()
    private var timeoutCheck: Scheduled<Void>?

    init(application: App, server: HTTPServerState) {
        self.application = application
        self.server = server
        self.logger = server.logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        timeoutCheck?.cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        guard server.register(context.channel) else {
            logger.warning(
                "closing connection: \(server.isShuttingDown ? "shutting down" : "connection limit reached")"
            )
            isClosing = true
            context.close(promise: nil)
            return
        }
        scheduleTimeoutCheck(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.unregister(context.channel)
        isClosing = true
        timeoutCheck?.cancel()
        if let exchange = current, !exchange.responseEnded {
            exchange.responseEnded = true
            exchange.body.fail(HTTPRequestInterruption.connectionClosed)
            exchange.task?.cancel()
        }
        current = nil
        queued.removeAll()
        resumeWriter(throwing: HTTPRequestInterruption.connectionClosed)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isClosing else { return }
        lastActivity = .now()
        let part = unwrapInboundIn(data)
        if let exchange = current, exchange.requestEnded || !queued.isEmpty {
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            begin(head, context: context)
        case .body(let bytes):
            guard let exchange = current, !exchange.requestEnded else { return }
            exchange.bodyBytes += bytes.readableBytes
            if exchange.responseEnded {
                // The response is out and the application no longer reads: the rest is dropped,
                // up to the body limit (a chunked body has no other end the server can count on).
                if exchange.bodyBytes > server.limits.maxBodyBytes {
                    isClosing = true
                    context.close(promise: nil)
                }
                return
            }
            if exchange.bodyBytes > server.limits.maxBodyBytes {
                // A chunked body past the limit (a declared one was refused at its head).
                if exchange.body.fail(RequestBodyTooLarge(maximum: server.limits.maxBodyBytes)) {
                    exchange.isPausingReads = false
                }
                exchange.keepAlive = false
                return
            }
            if exchange.body.append(bytes) { exchange.isPausingReads = true }
        case .end:
            guard let exchange = current, !exchange.requestEnded else { return }
            exchange.requestEnded = true
            exchange.body.finish()
            if exchange.responseEnded { finish(exchange, context: context) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !isClosing else { return }
        if let parserError = error as? HTTPParserError {
            logger.info("closing connection from \(peer(context)): malformed request (\(parserError))")
            if let exchange = current, exchange.responseEnded {
                // The response is out; what follows is not answered.
                closeAfterWrites(context: context)
                return
            }
            if let exchange = current {
                // Mid-body: the application sees its body fail; the connection closes after it.
                exchange.keepAlive = false
                exchange.requestEnded = true
                if exchange.body.fail(HTTPRequestInterruption.malformedBody) { exchange.isPausingReads = false }
                queued.removeAll()
                isClosing = true
                return
            }
            let status = parserError == .headerOverflow ? "431 Request Header Fields Too Large" : "400 Bad Request"
            answerAndClose(status: status, context: context)
            return
        }
        logger.debug("connection error from \(peer(context)): \(error)")
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if isLingering {
            context.read()
            return
        }
        if let exchange = current, exchange.isPausingReads || exchange.requestEnded || !queued.isEmpty {
            readPending = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeWriter(throwing: nil) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HTTPGracefulShutdown {
            isShuttingDown = true
            if let exchange = current {
                exchange.keepAlive = false
            } else {
                isClosing = true
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Running the application

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard head.version.major == 1 else {
            answerAndClose(status: "505 HTTP Version Not Supported", context: context)
            return
        }
        guard let target = NginxParameters.parseTarget(head.uri) else {
            answerAndClose(status: "400 Bad Request", context: context)
            return
        }
        let headBytes =
            head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        guard headBytes <= server.limits.effectiveMaxHeaderBytes else {
            answerAndClose(status: "431 Request Header Fields Too Large", context: context)
            return
        }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let source = HTTPRequestBodySource(highWatermark: server.limits.bodyBufferBytes) {
            eventLoop.execute { loopBoundSelf.value.bodyDrained() }
        }
        let exchange = HTTPExchange(
            body: source,
            isHead: head.method == .HEAD,
            version: (head.version.major, head.version.minor),
            keepAlive: head.isKeepAlive && !isShuttingDown
        )
        current = exchange
        let variables = NginxParameters.variables(
            head: head,
            target: target,
            remote: context.channel.remoteAddress,
            local: context.channel.localAddress,
            serverName: server.serverName
        )
        let logger = self.logger
        let errors = ErrorStream { message in
            if Task.isCancelled {
                logger.debug("request cancelled: \(message.dropLast())")
            } else {
                logger.warning("application: \(message.dropLast())")
            }
        }
        var environ = Environ(
            variables: variables,
            errors: errors,
            multithread: true,
            multiprocess: false,
            runOnce: false
        )
        let declaredLength = environ.contentLength
        let hasBody = declaredLength.map { $0 > 0 } ?? head.headers.contains(name: "transfer-encoding")
        let application: any GatewayApplication
        if let declaredLength, declaredLength > server.limits.maxBodyBytes {
            logger.info("\(head.method) \(head.uri): body of \(declaredLength) bytes over the limit, answering 413")
            environ.input = .empty
            exchange.keepAlive = false
            let maximum = server.limits.maxBodyBytes
            application = ClosureApplication { _ in throw RequestBodyTooLarge(maximum: maximum) }
        } else {
            environ.input = hasBody ? GatewayRequestBody(source: source, contentLength: declaredLength) : .empty
            application = self.application
            if hasBody, head.version.minor >= 1,
                head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
            {
                // The client waits for this before sending its body.
                context.writeAndFlush(
                    wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")),
                    promise: nil
                )
            }
        }
        let loopBoundExchange = NIOLoopBound(exchange, eventLoop: eventLoop)
        exchange.task = Task.immediate(executorPreference: executor!) {
            var output = HTTPResponseOutput(connection: loopBoundSelf, exchange: loopBoundExchange)
            let outcome = await ResponseDriver.run(application, environ: environ, output: &output)
            loopBoundSelf.value.complete(loopBoundExchange.value, outcome: outcome)
        }
        if exchange.responseEnded { exchange.task?.cancel() }
    }

    /// Writes response bytes for `exchange`: the head (turned from CGI into HTTP) once, then
    /// body bytes framed as the head decided.
    func write(head cgiHead: [UInt8], body: [UInt8], isLast: Bool, exchange: HTTPExchange) throws {
        guard let context, !exchange.responseEnded, !isClosing || current === exchange else {
            throw exchange.responseEnded
                ? HTTPRequestInterruption.requestEnded : HTTPRequestInterruption.connectionClosed
        }
        guard context.channel.isActive else { throw HTTPRequestInterruption.connectionClosed }
        var buffer = context.channel.allocator.buffer(capacity: cgiHead.count + body.count + 64)
        if !cgiHead.isEmpty, exchange.framing == nil {
            let framing = HTTPResponseFraming(cgiHead: cgiHead, version: exchange.version)
            buffer.writeBytes(framing.headBytes)
            if exchange.isHead || !framing.allowsBody {
                exchange.framing = .bodiless
            } else if let length = framing.contentLength {
                exchange.framing = .length(length)
            } else if exchange.version.minor >= 1 {
                exchange.framing = .chunked
                buffer.writeString("Transfer-Encoding: chunked\r\n")
            } else {
                exchange.framing = .untilClose
                exchange.keepAlive = false
            }
            if !exchange.keepAlive {
                buffer.writeString("Connection: close\r\n")
            } else if exchange.version.minor == 0 {
                buffer.writeString("Connection: keep-alive\r\n")
            }
            buffer.writeString("\r\n")
        }
        switch exchange.framing {
        case .chunked:
            if !body.isEmpty {
                buffer.writeString(String(body.count, radix: 16))
                buffer.writeString("\r\n")
                buffer.writeBytes(body)
                buffer.writeString("\r\n")
            }
            if isLast { buffer.writeString("0\r\n\r\n") }
        case .length(let length):
            // Never more than the head announced: extra bytes would be read as the next response.
            let room = max(0, length - exchange.bytesWritten)
            let sent = min(room, body.count)
            buffer.writeBytes(body.prefix(sent))
            exchange.bytesWritten += sent
        case .untilClose:
            buffer.writeBytes(body)
        case .bodiless, nil:
            break
        }
        if isLast { exchange.responseEnded = true }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Whether the socket takes more bytes now.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Suspends the response writer until the socket drains or the connection closes.
    nonisolated(nonsending) func waitUntilWritable() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if isClosing && !(context?.channel.isActive ?? false) {
                continuation.resume(throwing: HTTPRequestInterruption.connectionClosed)
            } else if isWritable {
                continuation.resume()
            } else {
                writabilityWaiter = continuation
            }
        }
    }

    private func resumeWriter(throwing error: (any Error)?) {
        guard let waiter = writabilityWaiter else { return }
        writabilityWaiter = nil
        if let error { waiter.resume(throwing: error) } else { waiter.resume() }
    }

    /// The application's task finished: end the response, then serve the next request or close.
    func complete(_ exchange: HTTPExchange, outcome: ResponseOutcome) {
        guard let context, current === exchange, context.channel.isActive else { return }
        var intact: Bool
        switch outcome {
        case .completed, .applicationFailed(headSent: false): intact = true
        case .applicationFailed(headSent: true), .outputFailed: intact = false
        }
        if intact, !exchange.responseEnded {
            switch exchange.framing {
            case .chunked:
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "0\r\n\r\n")), promise: nil)
            case .length(let length) where exchange.bytesWritten < length:
                intact = false
            default:
                break
            }
        }
        exchange.responseEnded = true
        if exchange.body.fail(HTTPRequestInterruption.requestEnded) { exchange.isPausingReads = false }
        if !intact {
            // A response cut short must reach the client as a failure: no terminating chunk,
            // the connection closes.
            closeAfterWrites(context: context)
            return
        }
        if exchange.requestEnded {
            finish(exchange, context: context)
        } else if !exchange.keepAlive {
            closeAfterWrites(context: context)
        } else {
            // The application left part of the body unread: read and drop it (bounded by the
            // body limit and the request timeout), then serve the next request.
            resumeReading(context: context)
        }
    }

    /// Both the request and its response are over.
    private func finish(_ exchange: HTTPExchange, context: ChannelHandlerContext) {
        current = nil
        lastActivity = .now()
        waitingSince = .now()
        guard exchange.keepAlive, !isShuttingDown, !isClosing else {
            closeAfterWrites(context: context)
            return
        }
        let waiting = queued
        queued.removeAll()
        for (position, part) in waiting.enumerated() {
            if let next = current, next.requestEnded {
                // Another whole request came in the same read: it waits for this one in turn.
                queued.append(contentsOf: waiting[position...])
                return
            }
            handle(part, context: context)
            if isClosing { return }
        }
        resumeReading(context: context)
    }

    private func bodyDrained() {
        guard let context, let exchange = current, exchange.isPausingReads else { return }
        exchange.isPausingReads = false
        resumeReading(context: context)
    }

    private func resumeReading(context: ChannelHandlerContext) {
        if readPending {
            readPending = false
            read(context: context)
        }
    }

    // MARK: Closing and timeouts

    /// Answers a request the server refuses itself (malformed, too large a head) and closes.
    private func answerAndClose(status: String, context: ChannelHandlerContext) {
        let body = status + "\n"
        let text =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        context.write(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
        closeAfterWrites(context: context)
    }

    /// Closes once what was written is out, lingering like nginx's `lingering_close`: the
    /// output is shut first and unread input is read and dropped for a moment, so a client
    /// still sending (a body the server refused) reads the response instead of a reset.
    private func closeAfterWrites(context: ChannelHandlerContext) {
        isClosing = true
        isLingering = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(mode: .output).whenComplete { _ in
                let timeout = channel.eventLoop.scheduleTask(in: Self.lingeringTime) { channel.close(promise: nil) }
                channel.closeFuture.whenComplete { _ in timeout.cancel() }
            }
        }
        if readPending {
            readPending = false
            context.read()
        }
    }

    /// How long a closing connection keeps reading (and dropping) what the client still sends.
    private static var lingeringTime: TimeAmount { .seconds(2) }

    /// One timer per connection, re-armed from the last activity: closes the connection when
    /// the client keeps the server waiting (for a whole head, or for body bytes) past the timeout.
    private func scheduleTimeoutCheck(context: ChannelHandlerContext) {
        guard let seconds = server.limits.effectiveRequestTimeoutSeconds else { return }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeoutCheck = context.eventLoop.scheduleTask(deadline: timeoutReference + .seconds(seconds)) {
            loopBoundSelf.value.checkTimeout()
        }
    }

    /// What the timeout counts from: the start of the wait for a head, or the last body bytes.
    private var timeoutReference: NIODeadline { current == nil ? waitingSince : lastActivity }

    private func checkTimeout() {
        guard let context, !isClosing, let seconds = server.limits.effectiveRequestTimeoutSeconds else { return }
        let waitingForClient: Bool
        if let exchange = current {
            waitingForClient = !exchange.requestEnded && !exchange.isPausingReads
        } else {
            waitingForClient = true
        }
        if waitingForClient, timeoutReference + .seconds(seconds) <= .now() {
            logger.info(
                "closing connection from \(peer(context)): the client kept the server waiting over \(seconds) s"
            )
            if let exchange = current {
                exchange.body.fail(HTTPRequestInterruption.timedOut)
                exchange.keepAlive = false
            }
            isClosing = true
            context.close(promise: nil)
            return
        }
        if !waitingForClient { lastActivity = .now() }
        scheduleTimeoutCheck(context: context)
    }

    private func peer(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.map { "\($0)" } ?? "an unknown peer"
    }
}
