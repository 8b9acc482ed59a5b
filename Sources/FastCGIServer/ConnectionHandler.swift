import FastCGI
import Gateway
import Logging
import NIOCore

/// Serves one FastCGI connection: the channel glue around `ConnectionStateMachine`.
///
/// It decodes records, tells the state machine what happened, and performs what it answers:
/// writes records, starts and cancels request tasks, pauses and resumes reading, closes. It
/// decides nothing itself. All of it runs on the connection's event loop; requests run as
/// tasks whose executor is that same loop, so their writes land here without locks or hops.
///
/// Not generic over the application: a generic handler (and the `NIOLoopBound`s and outputs
/// made from it) cost runtime metadata look-ups on every connection and every response.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Machine = ConnectionStateMachine

    private let application: any GatewayApplication
    private let server: ServerState
    private let logger: Logger
    private var decoder: RequestDecoder
    private var machine: Machine
    private var context: ChannelHandlerContext?
    private var executor: EventLoopTaskExecutor?
    /// Input read but not decoded yet: bytes that arrived while `channelRead` was already
    /// decoding (SwiftNIO reads again inside a failed flush, which an application's write can
    /// cause mid-decode), and what was left when decoding stopped because the output was over
    /// its bound. At most the reads of one read event (reading is paused meanwhile).
    private var backlog = CircularBuffer<ByteBuffer>()
    /// The web server, from the first request's `SERVER_SOFTWARE` (nginx's stock
    /// `fastcgi_params` send `nginx/VERSION`): how to retire a kept connection at shutdown.
    private var webServerIsKnown = false
    private var webServerIsNginx = false
    private var writabilityWaiters: [(request: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []

    init(application: any GatewayApplication, server: ServerState) {
        self.application = application
        self.server = server
        self.logger = server.logger
        let limits = server.limits
        // The decoder tolerates one id more than we serve, so the one over the limit is
        // answered FCGI_OVERLOADED instead of closing the connection. Saturating: the limit
        // may be Int.max.
        let (active, overflow) = limits.maxRequestsPerConnection.addingReportingOverflow(1)
        self.decoder = RequestDecoder(
            limits: DecoderLimits(
                maxParamsBytes: limits.maxParamsBytes,
                maxParamsPairs: limits.maxParamsPairs,
                maxActiveRequests: overflow ? .max : active,
                maxPendingParamsBytes: limits.maxParamsBytesPerConnection
            )
        )
        self.machine = Machine(
            configuration: .init(limits),
            now: .now,
            acquireSlot: { server.tryAcquireRequest() },
            releaseSlot: { server.releaseRequest() }
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
        switch server.register(context.channel) {
        case .refused:
            logger.warning("closing connection: connection limit reached")
            context.close(promise: nil)
            return
        case .registered(let linger):
            context.fireChannelActive()
            // Accepted while the server drains its listening socket's backlog: the web server
            // connected before we stopped listening, and its request is on the way.
            if let linger { perform(machine.shutdownRequested(now: .now, linger: linger), context: context) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.unregister(context.channel)
        backlog.removeAll()
        for request in machine.channelClosed() {
            request.body.fail(RequestBodyIncomplete(reason: .connectionClosed))
            request.task?.cancel()
        }
        let waiters = writabilityWaiters
        writabilityWaiters.removeAll()
        for waiter in waiters { waiter.continuation.resume(throwing: RequestInterruption.connectionClosed) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard machine.inputArrived(now: .now) else { return }
        let buffer = unwrapInboundIn(data)
        if machine.isDecoding || !backlog.isEmpty {
            backlog.append(buffer)
            if !machine.isDecoding { decode(nil, context: context) }
        } else {
            decode(buffer, context: context)
        }
    }

    /// Decodes `first`, then the backlog, while the state machine lets it.
    private func decode(_ first: ByteBuffer?, context: ChannelHandlerContext) {
        guard machine.mayDecode else {
            if let first, !machine.isClosing { backlog.append(first) }
            return
        }
        guard var buffer = first ?? backlog.popFirst() else { return }
        machine.decodingStarted()
        do {
            while true {
                while machine.mayDecode, let event = try decoder.next(from: &buffer) {
                    machine.atRecordBoundary = decoder.isAtRecordBoundary
                    handle(event, context: context)
                }
                guard machine.mayDecode, let next = backlog.popFirst() else { break }
                buffer = next
            }
        } catch {
            logger.error("closing FastCGI connection from \(peer(context)) on malformed input: \(error)")
            server.statistics.decodingFailed(error)
            machine.failed()
            context.close(promise: nil)
        }
        if machine.isClosing {
            backlog.removeAll()
        } else if buffer.readableBytes > 0 {
            backlog.prepend(buffer)
        }
        machine.atRecordBoundary = decoder.isAtRecordBoundary
        let (released, close) = machine.decodingFinished(backlog: !backlog.isEmpty)
        for id in released { decoder.endRequest(id) }
        // One table: the decoder knows exactly the ids the state machine holds.
        assert(machine.isClosing || decoder.activeRequestCount == machine.requests.count)
        perform(close, context: context)
        readIfResumed(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        machine.writabilityChanged(writable, now: .now)
        if writable {
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            for waiter in waiters { waiter.continuation.resume() }
            if !machine.isDecoding, !backlog.isEmpty { decode(nil, context: context) }
            readIfResumed(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            let (ended, bodies, close) = machine.peerClosedInput(now: .now)
            for end in ended {
                logger.info("request \(end.requestID): the web server closed its side before the params ended")
                perform(end, context: context)
            }
            // Bodies that never ended cannot finish now.
            for request in bodies {
                machine.bodyBuffered(-request.body.fail(RequestBodyIncomplete(reason: .connectionClosed)))
            }
            perform(close, context: context)
        case let shutdown as GracefulShutdownRequested:
            perform(machine.shutdownRequested(now: .now, linger: shutdown.linger), context: context)
        case let check as DeadlineCheck:
            switch machine.tick(now: check.now) {
            case .none:
                return
            case .closeGracefully(let close):
                logger.debug("closing connection from \(peer(context)), idle through the shutdown linger")
                perform(close, context: context)
            case .close(let reason):
                if reason == "idle" {
                    logger.debug("closing idle connection from \(peer(context))")
                } else {
                    logger.warning("closing connection from \(peer(context)): \(reason)")
                }
                context.close(promise: nil)
            case .failStalledBodies(let ids):
                let seconds = server.limits.stallTimeoutSeconds
                for id in ids {
                    guard let request = machine.requests[id]?.payload else { continue }
                    logger.warning("request \(id): no body bytes for \(seconds) s, failing its body")
                    machine.bodyBuffered(-request.body.fail(RequestBodyIncomplete(reason: .stalled(seconds: seconds))))
                }
                readIfResumed(context: context)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        machine.failed()
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if machine.readRequested() { context.read() }
    }

    private func readIfResumed(context: ChannelHandlerContext) {
        if machine.takePendingRead(now: .now) { context.read() }
    }

    // MARK: Records

    private func handle(_ event: RequestEvent, context: ChannelHandlerContext) {
        let now = machine.lastActivity
        switch event {
        case .begin(let id, let role, let keepConnection):
            let action = machine.begin(
                id: id,
                keepConnection: keepConnection,
                roleAccepted: server.roles.contains(role),
                now: now,
                makePayload: { makeRequest(id: id, context: context) }
            )
            guard case .refuse(let status, let reason, let close) = action else { return }
            if status == .overloaded { server.statistics.overloadedRefusal() }
            if status == .unknownRole {
                logger.info("refusing request \(id): unknown role \(role.rawValue)")
            } else {
                logger.warning("refusing request \(id): \(reason)")
            }
            var buffer = context.channel.allocator.buffer(capacity: 16)
            ResponseEncoder.writeEndRequest(requestID: id, appStatus: 0, protocolStatus: status, into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            decoder.endRequest(id)
            perform(close, context: context)
        case .params(let id, let pairs):
            guard let (request, serial) = machine.paramsEnded(id: id, now: now) else { return }
            start(request, serial: serial, variables: CGIVariables(storage: pairs.storage, layout: pairs.layout))
        case .stdin(let id, let bytes):
            switch machine.stdin(id: id, count: bytes.readableBytes, now: now) {
            case .ignore:
                return
            case .append(let request):
                let (kept, retained) = StdinBodySource.retaining(bytes, allocator: context.channel.allocator)
                if request.body.append(kept, retained: retained) { machine.bodyBuffered(retained) }
            case .overLimit(let request, let maximum):
                // Its reader gets the error, which becomes a 413.
                logger.warning("request \(id): body over the limit of \(maximum) bytes")
                server.statistics.bodyLimitHit()
                machine.bodyBuffered(-request.body.fail(RequestBodyTooLarge(maximum: maximum)))
            }
        case .stdinEnd(let id):
            machine.stdinEnded(id: id)?.body.finish()
        case .data, .dataEnd:
            // Filter role is refused at BEGIN_REQUEST, so no request here takes DATA.
            return
        case .abort(let id):
            guard let end = machine.abort(id: id, now: now) else { return }
            end.payload.task?.cancel()
            machine.bodyBuffered(-end.payload.body.fail(RequestBodyIncomplete(reason: .aborted)))
            resumeWaiters(of: end.serial, throwing: RequestInterruption.aborted)
            perform(end, context: context)
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

    private func makeRequest(id: UInt16, context: ChannelHandlerContext) -> InFlightRequest {
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let body = StdinBodySource { retained in
            if loopBoundSelf.eventLoop.inEventLoop {
                loopBoundSelf.value.bodyConsumed(retained)
            } else {
                loopBoundSelf.eventLoop.execute { loopBoundSelf.value.bodyConsumed(retained) }
            }
        }
        return InFlightRequest(id: id, body: body)
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

    /// The one place a request's `Environ` is built.
    private func makeEnviron(
        variables: CGIVariables,
        request: InFlightRequest,
        serial: UInt64,
        eventLoop: any EventLoop
    ) -> Environ {
        let loopBoundSelf = NIOLoopBound(self, eventLoop: eventLoop)
        let logger = self.logger
        let wireID = request.id
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
                loopBoundSelf.value.writeStderr(message, id: wireID, serial: serial)
            } else {
                loopBoundSelf.eventLoop.execute {
                    loopBoundSelf.value.writeStderr(message, id: wireID, serial: serial)
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
        environ.input = GatewayRequestBody(source: request.body, contentLength: environ.contentLength)
        return environ
    }

    private func start(_ request: InFlightRequest, serial: UInt64, variables: CGIVariables) {
        guard let context, let executor else { return }
        if !webServerIsKnown {
            webServerIsKnown = true
            webServerIsNginx = variables["SERVER_SOFTWARE"]?.hasPrefix("nginx/") ?? false
        }
        var environ = makeEnviron(variables: variables, request: request, serial: serial, eventLoop: context.eventLoop)
        let application: any GatewayApplication
        let maximum = server.limits.maxBodyBytes
        if let contentLength = environ.contentLength, contentLength > maximum {
            environ.logger.warning("body of \(contentLength) bytes over the limit, answering 413")
            server.statistics.bodyLimitHit()
            environ.input = .empty
            application = ClosureApplication { _ in throw RequestBodyTooLarge(maximum: maximum) }
        } else {
            application = self.application
        }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = request.id
        request.task = Task.immediate(executorPreference: executor) {
            var output = FastCGIResponseOutput(connection: loopBoundSelf, id: id, serial: serial)
            let outcome = await ResponseDriver.run(application, environ: environ, output: &output)
            loopBoundSelf.value.complete(id: id, serial: serial, outcome: outcome)
        }
        // The request may have ended while its task ran up to its first suspension (the
        // connection closed under a write): the cancellation it missed is delivered now.
        if machine.request(id, serial: serial) == nil { request.task?.cancel() }
    }

    /// Sends response bytes for a request as `FCGI_STDOUT`; flushes unless more follows at once.
    func writeStdout(_ head: [UInt8], _ body: [UInt8], id: UInt16, serial: UInt64, flush: Bool) throws {
        guard let context, !machine.isClosing, machine.request(id, serial: serial) != nil else {
            throw machine.isClosing ? RequestInterruption.connectionClosed : RequestInterruption.requestEnded
        }
        let records = (head.count + body.count) / 65535 + 2
        var buffer = context.channel.allocator.buffer(capacity: head.count + body.count + records * 16)
        ResponseEncoder.writeStream(.stdout, requestID: id, head: head, body: body, into: &buffer)
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    /// Whether the socket takes more bytes now; response writers wait while it does not.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Suspends a response writer until the socket drains, the request ends or the connection
    /// closes (a connection whose output stays stuck is closed by the stall deadline).
    nonisolated(nonsending) func waitUntilWritable(id: UInt16, serial: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if machine.isClosing {
                continuation.resume(throwing: RequestInterruption.connectionClosed)
            } else if machine.request(id, serial: serial) == nil {
                continuation.resume(throwing: RequestInterruption.requestEnded)
            } else if isWritable {
                continuation.resume()
            } else {
                writabilityWaiters.append((serial, continuation))
            }
        }
    }

    private func writeStderr(_ message: String, id: UInt16, serial: UInt64) {
        guard let context, !machine.isClosing, machine.request(id, serial: serial) != nil else { return }
        var buffer = context.channel.allocator.buffer(capacity: message.utf8.count + 16)
        ResponseEncoder.writeStream(.stderr, requestID: id, bytes: message.utf8, into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// The application's task returned.
    ///
    /// A response that failed after its head went out (`applicationFailed(headSent: true)`,
    /// `outputFailed`) is not ended: what was written is flushed and the connection closes
    /// without the empty STDOUT and without `FCGI_END_REQUEST`, so the web server sees an
    /// upstream that closed early and cuts its client's response (a truncated body must not
    /// look complete). Other requests multiplexed on the same connection are cut with it:
    /// FastCGI has no way to fail one request's stream once it began, and their web server
    /// sees the same early close for each.
    func complete(id: UInt16, serial: UInt64, outcome: ResponseOutcome) {
        let kind: ResponseOutcomeKind
        switch outcome {
        case .completed, .applicationFailed(headSent: false): kind = .completed
        case .applicationFailed(headSent: true), .outputFailed: kind = .failedAfterHead
        }
        // Told to the machine even after the channel is gone (the handler is removed right
        // after channelInactive): a task that outlives its connection still holds a slot,
        // and only this frees it.
        let action = machine.taskFinished(id: id, serial: serial, outcome: kind, now: .now)
        guard let context else { return }
        switch action {
        case .none:
            return
        case .end(let end):
            perform(end, context: context)
        case .cut(let requestID):
            logger.warning(
                "request \(requestID): the response failed after its head was sent; closing the connection to cut it"
            )
            // nginx without fastcgi_keep_conn takes the end of the connection for the end of the
            // response: a record header of version 0, which every FastCGI client rejects, makes
            // it (and any peer) fail the response instead of ending it cleanly.
            var marker = context.channel.allocator.buffer(capacity: 8)
            marker.writeBytes([0, 0, UInt8(requestID >> 8), UInt8(requestID & 0xFF), 0, 0, 0, 0])
            context.write(wrapOutboundOut(marker), promise: nil)
            perform(.flushThenClose, context: context)
        }
    }

    /// Ends a request: stdout terminated, `FCGI_END_REQUEST`, id released for reuse.
    private func perform(_ end: Machine.EndAction, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 24)
        ResponseEncoder.writeStreamEnd(.stdout, requestID: end.requestID, into: &buffer)
        ResponseEncoder.writeEndRequest(
            requestID: end.requestID,
            appStatus: end.appStatus,
            protocolStatus: .requestComplete,
            into: &buffer
        )
        if end.retiresKeptConnection, webServerIsNginx {
            // Closing a kept connection races the web server reusing it: nginx may read this
            // END_REQUEST, keep the connection and send the next request on it before our FIN
            // arrives (a 502 for a POST, which it does not retry). nginx keeps an upstream
            // connection only when END_REQUEST ends what it read; a record after it, in the same
            // write, makes it drop the connection instead. An empty FCGI_GET_VALUES_RESULT is
            // the most harmless record there is. Only for nginx: Apache's mod_proxy_fcgi checks
            // a pooled connection before reusing it, and would take the record for the next
            // request's answer ("bogus rid 0") where it now sees the close.
            ResponseEncoder.writeGetValuesResult([], into: &buffer)
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        machine.bodyBuffered(-end.payload.body.fail(RequestBodyIncomplete(reason: .requestEnded)))
        resumeWaiters(of: end.serial, throwing: RequestInterruption.requestEnded)
        if end.releaseID { decoder.endRequest(end.requestID) }
        perform(end.close, context: context)
        readIfResumed(context: context)
    }

    private func resumeWaiters(of serial: UInt64, throwing error: @autoclosure () -> any Error) {
        guard writabilityWaiters.contains(where: { $0.request == serial }) else { return }
        let resumed = writabilityWaiters.filter { $0.request == serial }
        writabilityWaiters.removeAll { $0.request == serial }
        let error = error()
        for waiter in resumed { waiter.continuation.resume(throwing: error) }
    }

    /// An application read body bytes that retained `retained` bytes.
    private func bodyConsumed(_ retained: Int) {
        machine.bodyBuffered(-retained)
        if let context { readIfResumed(context: context) }
    }

    // MARK: Closing

    private func perform(_ close: Machine.CloseAction?, context: ChannelHandlerContext) {
        guard let close else { return }
        let channel = context.channel
        switch close {
        case .closeNow:
            context.close(promise: nil)
        case .flushThenClose:
            // Nothing more is coming from the web server: close as soon as what we wrote is out.
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                channel.close(promise: nil)
            }
        case .halfCloseThenDrain:
            // Half-close first, so unread input from the web server is drained instead of
            // answered with a reset that could cut the response it is still reading. The
            // state machine's close deadline ends a drain the web server never finishes.
            let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.close(mode: .output).whenComplete { _ in
                // Shutting down: everything is written, so close now rather than wait for kept
                // connections the web server would hold open (a process manager kills us in 5 s).
                if loopBoundSelf.value.machine.outputClosed() { channel.close(promise: nil) }
            }
            context.read()
        }
    }

    private func peer(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.map { "\($0)" } ?? "a Unix socket peer"
    }
}
