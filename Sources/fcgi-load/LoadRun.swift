import NIOCore
import NIOPosix

/// One load run: hands out the request budget to connections, keeps the counts, stops on time.
///
/// Lives on the client's single event loop, like every connection it drives, so it needs no locks.
final class LoadRun {
    let plan: LoadPlan
    let eventLoop: any EventLoop
    private let done: EventLoopPromise<LoadReport>

    private var started = NIODeadline.now()
    private var lastCompletion = NIODeadline.now()
    private var unstarted: Int
    private var isStopping = false
    private var isFinished = false
    private var connections: [ObjectIdentifier: LoadConnection] = [:]

    private(set) var inFlight = 0
    private var latencies: [UInt64] = []
    private var failed = 0
    private var socketErrors = 0
    private var bytesSent = 0
    private var bytesReceived = 0

    init(plan: LoadPlan, eventLoop: any EventLoop) {
        self.plan = plan
        self.eventLoop = eventLoop
        self.done = eventLoop.makePromise()
        self.unstarted = plan.requests
        self.latencies.reserveCapacity(min(plan.requests, 1 << 20))
    }

    /// Opens the connections; the future completes when the run is over.
    func start() -> EventLoopFuture<LoadReport> {
        started = .now()
        lastCompletion = started
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: plan.duration) { loopBound.value.stop() }
        for _ in 0..<plan.connections { connect() }
        return done.futureResult
    }

    // MARK: Called by connections

    /// Takes one request from the budget; false once the run is stopping or the budget is spent.
    func takeRequest() -> Bool {
        guard !isStopping, unstarted > 0 else { return false }
        unstarted -= 1
        inFlight += 1
        return true
    }

    func sent(bodyBytes: Int) { bytesSent += bodyBytes }

    func received(stdoutBytes: Int) { bytesReceived += stdoutBytes }

    /// A request ended with `FCGI_END_REQUEST`; `succeeded` when complete with a 2xx status.
    func finished(latencyNanoseconds: UInt64, succeeded: Bool) {
        inFlight -= 1
        lastCompletion = .now()
        if succeeded { latencies.append(latencyNanoseconds) } else { failed += 1 }
        if !isStopping, unstarted == 0, inFlight == 0 { stop() }
    }

    /// Requests a connection lost when it closed or failed before answering them.
    func lost(requests: Int) {
        inFlight -= requests
        failed += requests
    }

    func socketError() { socketErrors += 1 }

    /// A connection closed; open another while the run still has requests to give out.
    func closed(_ connection: LoadConnection) {
        connections[ObjectIdentifier(connection)] = nil
        if isStopping {
            if connections.isEmpty { finish() }
        } else if unstarted > 0 {
            connect()
        }
    }

    // MARK: Running

    private func connect() {
        let connection = LoadConnection(run: self)
        connections[ObjectIdentifier(connection)] = connection
        let handler = NIOLoopBound(connection, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            // Reads of up to 1 MiB: large responses arrive in few reads, small ones stay cheap.
            .channelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 1 << 20)
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
        let future: EventLoopFuture<any Channel>
        switch plan.target {
        case .unix(let path): future = bootstrap.connect(unixDomainSocketPath: path)
        case .tcp(let host, let port): future = bootstrap.connect(host: host, port: port)
        }
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        future.whenFailure { _ in
            loopBound.value.socketErrors += 1
            // Back off a little so a refusing server does not turn into a busy loop.
            loopBound.eventLoop.scheduleTask(in: .milliseconds(10)) { loopBound.value.closed(handler.value) }
        }
    }

    /// Stops handing out requests; waits up to the timeout for those in flight.
    private func stop() {
        guard !isStopping else { return }
        isStopping = true
        for connection in connections.values { connection.closeIfIdle() }
        if connections.isEmpty { return finish() }
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: plan.timeout) { loopBound.value.finish() }
    }

    private func finish() {
        guard !isFinished else { return }
        isFinished = true
        let timedOut = inFlight
        for connection in connections.values { connection.abandon() }
        let end = timedOut > 0 || lastCompletion == started ? NIODeadline.now() : lastCompletion
        done.succeed(
            LoadReport(
                latencies: latencies,
                failed: failed,
                socketErrors: socketErrors,
                timedOut: timedOut,
                seconds: Double((end - started).nanoseconds) / 1e9,
                bytesSent: bytesSent,
                bytesReceived: bytesReceived
            )
        )
    }
}
