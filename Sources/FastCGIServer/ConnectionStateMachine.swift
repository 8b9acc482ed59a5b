import FastCGI

/// Everything one FastCGI connection decides, as a pure value: no channel, no event loop, no
/// buffers, and time only as the `now` its caller passes in. `ConnectionHandler` feeds it
/// what happened (bytes arrived, a record was decoded, a task finished, the socket's output
/// filled or drained, the clock moved) and performs the actions it returns.
///
/// **The connection** is `open`, then `closing` (flushing before a full close, or half-closed
/// and draining the web server's unread input), then `closed`. It starts closing once it was
/// asked to close when idle (a request without `FCGI_KEEP_CONN` ended, the web server closed
/// its side, shutdown began) and no request is left in the table. Deadlines cut every phase:
/// params that do not complete within `paramsTimeout`, a body or an output write that makes no
/// progress for `stallTimeout`, a closing connection that cannot flush within `closeTimeout`,
/// and an idle connection after `idleTimeout`.
///
/// **The requests** live in one table keyed by request id, each with one `RequestPhase`. The
/// decoder's own table holds the same ids: an id enters both at `FCGI_BEGIN_REQUEST` and
/// leaves both when an entry is removed here, which always returns `releaseID` to its caller
/// (the one place that calls `RequestDecoder.endRequest`).
///
/// **Slots**: a request holds a server-wide slot (`acquireSlot`/`releaseSlot`) from
/// `FCGI_BEGIN_REQUEST` until both its `FCGI_END_REQUEST` went out and its application's task
/// returned, so an aborted request whose application ignores cancellation keeps counting
/// against `maxRequests` and `maxRequestsPerConnection` for as long as it runs.
///
/// **Reading** pauses while the request bodies buffered on this connection retain more than
/// `bodyBufferBytes`, while the socket's queued output is over its bound (`outputWritable` is
/// false), and while input already read waits to be decoded. Decoding itself stops while the
/// output is over its bound, so no read can multiply into unbounded replies.
///
/// Tests drive it with a clock of their own (`Tests/FastCGIServerTests/ConnectionStateMachineTests.swift`).
///
/// ## The connection, drawn out
///
/// ```
///             close asked for (no KEEP_CONN, peer half-closed, shutdown, refusal)
///  open ───── and the request table is empty ─────────────────────┐
///   │                                                             │
///   │ input drained and decoder at a record boundary              │ otherwise
///   ▼                                                             ▼
///  flushingThenClosing(since) ── flush done ──► closed     halfClosedDraining(since)
///   │                                                             │  peer closes its side ──► closed
///   └── closeTimeout passes ──► closed                            └─ closeTimeout passes ──► closed
/// ```
///
/// Also straight to `closed`: malformed input, a failed flush, the channel going inactive, and
/// the deadlines of an open connection (below). A response that fails after its head went out
/// moves the connection to `flushingThenClosing` *without* ending its request: the web server
/// sees an upstream that closed early and cuts its client's response; other requests
/// multiplexed on the connection are cut with it.
///
/// ## A request, drawn out
///
/// ```
///  BEGIN_REQUEST ─► awaitingParams(since) ─ params end ─► receivingBody(lastInput) ─ STDIN end ─► bodyComplete
///        │                 │                                      │                                  │
///    refused          ABORT / peer half-close           ABORT / task returns                 ABORT / task returns
///  (END_REQUEST,           ▼                                      ▼                                  ▼
///   id forgotten)      ended(stdinEnded) ── the read being decoded is done (or at once with KEEP_CONN) ─► removed
/// ```
///
/// An entry leaves the table (and the decoder, through `releaseID`/`released`) only in
/// `ended`. The id can then be reused; the task of a request removed while still running is
/// counted in `detachedTasks` and keeps its slot (server-wide `maxRequests` and this
/// connection's `maxRequestsPerConnection`) until it returns. The task names its request by
/// id *and* serial, so a late write of an aborted request never lands in a reused id.
///
/// ## Reading and decoding
///
/// Reading pauses while any of these holds, and the read it held back is issued by
/// `takePendingRead` once none does:
///
/// - the request bodies buffered on the connection retain more than `bodyBufferBytes`
///   (counted by what they pin: a small slice is copied, a large one counts its whole receive
///   buffer);
/// - the socket's queued output is over `outputBufferBytes` (the channel is not writable);
/// - input already read waits in the backlog: decoding stops while the output is over its
///   bound, so a flood of records that each ask for a reply cannot grow the output further.
///
/// ## Deadlines (`tick(now:)`, driven by the server's sweep)
///
/// | state | deadline | then |
/// |---|---|---|
/// | closing, either way | `closeTimeout` from the start of closing | closed |
/// | open, output not writable | `stallTimeout` without becoming writable | closed |
/// | a request in `awaitingParams` | `paramsTimeout` from its BEGIN_REQUEST, however the bytes trickle | closed |
/// | open, nothing arrived, no application running | `idleTimeout` | closed |
/// | a request in `receivingBody`, reading not paused by us | `stallTimeout` since its last body byte | its body's reader fails |
struct ConnectionStateMachine {
    typealias Instant = MonotonicInstant
    /// What the channel glue keeps per request. Concrete, not a generic parameter: a generic
    /// machine inside the generic handler cost runtime metadata look-ups and whole-struct
    /// copies on every call (a third more CPU per multiplexed request).
    typealias Payload = InFlightRequest

    /// The bounds and deadlines one connection works with (from `ServerLimits`).
    struct Configuration {
        var maxRequestsPerConnection: Int
        var bodyBufferBytes: Int
        var maxBodyBytes: Int
        /// Nil: no deadline (a setting of 0 or less).
        var paramsTimeout: Duration?
        var stallTimeout: Duration?
        var closeTimeout: Duration?
        var idleTimeout: Duration?

        init(_ limits: ServerLimits) {
            func duration(_ seconds: Int64) -> Duration? { seconds > 0 ? .seconds(seconds) : nil }
            maxRequestsPerConnection = limits.maxRequestsPerConnection
            bodyBufferBytes = limits.bodyBufferBytes
            maxBodyBytes = limits.maxBodyBytes
            paramsTimeout = duration(limits.paramsTimeoutSeconds)
            stallTimeout = duration(limits.stallTimeoutSeconds)
            closeTimeout = duration(limits.closeTimeoutSeconds)
            idleTimeout = duration(limits.idleTimeoutSeconds)
        }
    }

    /// Where one request is between its `FCGI_BEGIN_REQUEST` and its removal from the table.
    enum RequestPhase: Equatable {
        /// Begun; its params have not ended. `since` starts the params deadline.
        case awaitingParams(since: Instant, stdinEnded: Bool)
        /// The application runs and the body is still arriving; `lastInput` starts the stall
        /// deadline (a body byte, or the moment reading resumed after a pause of ours), nil
        /// once the body was failed for stalling.
        case receivingBody(lastInput: Instant?)
        /// The application runs; the body has ended (the web server sends nothing more).
        case bodyComplete
        /// `FCGI_END_REQUEST` went out. The entry stays only until the read being decoded is
        /// done (a request without `FCGI_KEEP_CONN` usually has its STDIN end in the same
        /// bytes, and seeing it spares a half-close and drain).
        case ended(stdinEnded: Bool)

        var isEnded: Bool { if case .ended = self { true } else { false } }
        var isRunning: Bool {
            switch self {
            case .receivingBody, .bodyComplete: true
            case .awaitingParams, .ended: false
            }
        }
        var stdinEnded: Bool {
            switch self {
            case .awaitingParams(_, let ended), .ended(let ended): ended
            case .receivingBody: false
            case .bodyComplete: true
            }
        }
    }

    /// One entry of the request table.
    struct Request {
        let serial: UInt64
        let keepConnection: Bool
        var phase: RequestPhase
        /// The application's task has been started and has not returned.
        var taskRunning = false
        /// STDIN bytes received, counted against `maxBodyBytes`.
        var bodyBytes = 0
        let payload: Payload
    }

    /// Where the connection is.
    enum ConnectionPhase: Equatable {
        case open
        /// Flushing what was written, then closing; `since` starts the close deadline.
        case flushingThenClosing(since: Instant)
        /// Our side is (being) shut down; unread input is drained until the web server closes.
        case halfClosedDraining(since: Instant, outputClosed: Bool)
        case closed
    }

    /// How the connection should close.
    enum CloseAction: Equatable {
        /// Nothing more is coming: close once what was written is out.
        case flushThenClose
        /// Input may still be on its way: shut our side and drain the rest until the web
        /// server closes, so unread input is not answered with a reset that cuts the response.
        case halfCloseThenDrain
        /// Close at once.
        case closeNow
    }

    /// Ending a request: what its caller writes and releases.
    struct EndAction {
        let requestID: UInt16
        let serial: UInt64
        let payload: Payload
        /// `FCGI_END_REQUEST`'s appStatus, after an empty STDOUT.
        let appStatus: UInt32
        /// Whether the id leaves the table (and the decoder) now.
        let releaseID: Bool
        let close: CloseAction?
        /// Shutting down, the web server asked to keep the connection (`FCGI_KEEP_CONN`) and
        /// may send more on it, and it closes after this request: tell the web server not to
        /// reuse it (see `ConnectionHandler`).
        let retiresKeptConnection: Bool
    }

    enum BeginAction {
        case accept(serial: UInt64)
        /// Answer `FCGI_END_REQUEST` with `status`, forget the id, and maybe close.
        case refuse(ProtocolStatus, reason: String, close: CloseAction?)
    }

    enum StdinAction {
        case ignore
        /// Buffer the bytes in the request's body (then report `bodyBuffered`).
        case append(Payload)
        /// The body just went over `maxBodyBytes`: fail its reader (with a 413); later bytes are dropped.
        case overLimit(Payload, maximum: Int)
    }

    enum CompletionAction {
        case none
        /// End the request normally.
        case end(EndAction)
        /// The response failed after its head went out: close the connection without ending
        /// the request, so the web server sees an upstream that closed early.
        case cut(requestID: UInt16)
    }

    /// What the clock says to do.
    enum TickAction: Equatable {
        case none
        case close(reason: String)
        /// Shutting down, the connection stayed idle through its linger: close it as idle.
        case closeGracefully(CloseAction)
        /// These requests' bodies made no progress for `stallTimeout`: fail their readers.
        case failStalledBodies([UInt16])
    }

    let configuration: Configuration
    private let acquireSlot: () -> Bool
    private let releaseSlot: () -> Void

    private(set) var requests: [UInt16: Request] = [:]
    private(set) var phase = ConnectionPhase.open
    /// Tasks of requests already removed from the table that still run: they hold slots.
    private(set) var detachedTasks = 0
    private var nextSerial: UInt64 = 0
    /// Close as soon as no request is left.
    private(set) var closeWhenIdle = false
    private(set) var isShuttingDown = false
    /// The web server closed its side: it sends nothing more, and needs no telling.
    private var peerClosedInput = false
    /// Shutting down, an idle connection stays open until then unless the web server uses or
    /// closes it first (see `shutdownRequested`).
    private var lingerUntil: Instant?
    /// Every byte the web server will send for the ended requests has been read.
    private var inputIsDrained = true
    private(set) var isDecoding = false
    /// Requests that ended while their read was decoded; they leave the table when it is done.
    private var endedWhileDecoding: [UInt16] = []
    /// Input was read but not decoded yet (decoding stopped while output was over its bound).
    private(set) var hasInputBacklog = false
    private var readPending = false
    /// Bytes retained by the request bodies buffered on this connection.
    private(set) var bufferedBodyBytes = 0
    private(set) var outputWritable = true
    private var unwritableSince: Instant?
    private(set) var lastActivity: Instant
    /// Reading was paused by us (not by the peer) since this instant: bodies do not stall meanwhile.
    private var pausedSince: Instant?

    init(
        configuration: Configuration,
        now: Instant,
        acquireSlot: @escaping () -> Bool,
        releaseSlot: @escaping () -> Void
    ) {
        self.configuration = configuration
        self.lastActivity = now
        self.acquireSlot = acquireSlot
        self.releaseSlot = releaseSlot
    }

    var isClosing: Bool { phase != .open }

    /// Requests counted against `maxRequestsPerConnection`: the slots this connection holds
    /// (requests not ended, and tasks still running for requests that ended).
    private(set) var requestsInFlight = 0

    private mutating func releaseOneSlot() {
        requestsInFlight -= 1
        releaseSlot()
    }

    /// The live request for a task: nil once it ended (its id may already be reused).
    func request(_ id: UInt16, serial: UInt64) -> Request? {
        guard let request = requests[id], request.serial == serial, !request.phase.isEnded else { return nil }
        return request
    }

    // MARK: Input

    /// Bytes arrived. Returns false when they are to be dropped (the connection is closing).
    mutating func inputArrived(now: Instant) -> Bool {
        lastActivity = now
        return phase == .open
    }

    /// Decoding may go on: the connection is open and its output is within bounds.
    var mayDecode: Bool { phase == .open && outputWritable }

    mutating func decodingStarted() {
        isDecoding = true
    }

    /// The read is decoded (or decoding stopped with `backlog` left). Requests that ended
    /// meanwhile leave the table now; their ids are returned for the decoder.
    mutating func decodingFinished(backlog: Bool) -> (released: [UInt16], close: CloseAction?) {
        isDecoding = false
        hasInputBacklog = backlog
        if backlog, pausedSince == nil { pausedSince = lastActivity }
        guard phase == .open else { return ([], nil) }
        guard !endedWhileDecoding.isEmpty else { return ([], nil) }
        let released = endedWhileDecoding
        endedWhileDecoding.removeAll(keepingCapacity: true)
        for id in released { remove(id) }
        return (released, closeIfIdle(now: lastActivity))
    }

    /// The channel asks to read. True: read now. False: it is remembered until reading may resume.
    mutating func readRequested() -> Bool {
        if readingPaused {
            if pausedSince == nil { pausedSince = lastActivity }
            readPending = true
            return false
        }
        return true
    }

    private var readingPaused: Bool {
        phase == .open && (bufferedBodyBytes > configuration.bodyBufferBytes || !outputWritable || hasInputBacklog)
    }

    /// After anything that may unpause reading: true when a held read should be issued now.
    /// `now` is only read when reading resumes (the clock is not free, and this runs per request).
    mutating func takePendingRead(now: @autoclosure () -> Instant) -> Bool {
        guard readPending, !readingPaused else { return false }
        readPending = false
        if pausedSince != nil { resumed(now: now()) }
        return true
    }

    private mutating func resumed(now: Instant) {
        guard pausedSince != nil else { return }
        pausedSince = nil
        // Bodies waited on us, not on the peer: their stall clocks start again.
        for (id, request) in requests {
            if case .receivingBody(.some) = request.phase { requests[id]!.phase = .receivingBody(lastInput: now) }
        }
    }

    // MARK: Output

    /// The socket's queued output went over (false) or back under (true) its bound.
    mutating func writabilityChanged(_ writable: Bool, now: Instant) {
        outputWritable = writable
        unwritableSince = writable ? nil : (unwritableSince ?? now)
        if !writable, pausedSince == nil { pausedSince = now }
    }

    // MARK: Records

    mutating func begin(
        id: UInt16,
        keepConnection: Bool,
        roleAccepted: Bool,
        now: Instant,
        makePayload: () -> Payload
    ) -> BeginAction {
        let refusal: (ProtocolStatus, String)?
        if !roleAccepted {
            refusal = (.unknownRole, "unknown role")
        } else if isShuttingDown, requests.values.contains(where: { !$0.phase.isEnded }) {
            // A peer multiplexing on a busy connection: serving more could keep the connection
            // busy past the grace period and cut everything on it. It can send this one
            // elsewhere. (On an idle connection the request is served: nginx picked a kept
            // connection, and refusing would be a 502 for its client.)
            refusal = (.overloaded, "shutting down")
        } else if requestsInFlight >= configuration.maxRequestsPerConnection || !acquireSlot() {
            refusal = (.overloaded, "overloaded")
        } else {
            refusal = nil
        }
        if let (status, reason) = refusal {
            var close: CloseAction?
            if !keepConnection {
                inputIsDrained = false  // its params and stdin may still be on their way
                closeWhenIdle = true
                close = closeIfIdle(now: now)
            }
            return .refuse(status, reason: reason, close: close)
        }
        requestsInFlight += 1
        // The web server used the connection: it closes as soon as this request has ended. (A
        // refused one leaves the linger running: its end closes the connection.)
        lingerUntil = nil
        nextSerial &+= 1
        requests[id] = Request(
            serial: nextSerial,
            keepConnection: keepConnection,
            phase: .awaitingParams(since: now, stdinEnded: false),
            payload: makePayload()
        )
        return .accept(serial: nextSerial)
    }

    /// The params ended: the payload to start the application with, or nil.
    mutating func paramsEnded(id: UInt16, now: Instant) -> (payload: Payload, serial: UInt64)? {
        guard var request = requests[id], case .awaitingParams(_, let stdinEnded) = request.phase else { return nil }
        request.phase = stdinEnded ? .bodyComplete : .receivingBody(lastInput: now)
        request.taskRunning = true
        requests[id] = request
        return (request.payload, request.serial)
    }

    mutating func stdin(id: UInt16, count: Int, now: Instant) -> StdinAction {
        // An ended request's body is no longer read (a 413 answered, an early answer).
        guard var request = requests[id], !request.phase.isEnded else { return .ignore }
        let maximum = configuration.maxBodyBytes
        let wasWithinLimit = request.bodyBytes <= maximum
        request.bodyBytes = request.bodyBytes.addingReportingOverflow(count).overflow ? .max : request.bodyBytes + count
        if case .receivingBody(.some) = request.phase { request.phase = .receivingBody(lastInput: now) }
        requests[id] = request
        guard request.bodyBytes <= maximum else {
            // Only a body without a CONTENT_LENGTH gets here (a larger declared one is
            // answered 413 up front). Once over, the rest of the body is dropped.
            return wasWithinLimit ? .overLimit(request.payload, maximum: maximum) : .ignore
        }
        return .append(request.payload)
    }

    /// A body now retains `bytes` more (positive) or fewer (negative, read or dropped).
    mutating func bodyBuffered(_ bytes: Int) {
        bufferedBodyBytes += bytes
    }

    /// The empty STDIN record: the payload whose body is finished, or nil.
    mutating func stdinEnded(id: UInt16) -> Payload? {
        guard var request = requests[id] else { return nil }
        switch request.phase {
        case .awaitingParams(let since, _): request.phase = .awaitingParams(since: since, stdinEnded: true)
        case .receivingBody, .bodyComplete: request.phase = .bodyComplete
        case .ended: request.phase = .ended(stdinEnded: true)
        }
        requests[id] = request
        return request.payload
    }

    /// `FCGI_ABORT_REQUEST`: the request ends now (`appStatus` 1); its task is cancelled.
    mutating func abort(id: UInt16, now: Instant) -> EndAction? {
        guard requests[id] != nil else { return nil }
        return end(id, appStatus: 1, now: now)
    }

    /// The web server closed its side: requests whose params never ended cannot start (they
    /// end now), bodies that never ended cannot finish (returned, to be failed).
    mutating func inputClosed(now: Instant) -> (ended: [EndAction], unfinishedBodies: [Payload], close: CloseAction?) {
        closeWhenIdle = true
        lingerUntil = nil
        peerClosedInput = true
        var ended: [EndAction] = []
        var bodies: [Payload] = []
        for (id, request) in requests {
            switch request.phase {
            case .awaitingParams: if let action = end(id, appStatus: 1, now: now) { ended.append(action) }
            case .receivingBody: bodies.append(request.payload)
            case .bodyComplete, .ended: break
            }
        }
        return (ended, bodies, closeIfIdle(now: now))
    }

    /// The application's task returned.
    mutating func taskFinished(
        id: UInt16,
        serial: UInt64,
        outcome: ResponseOutcomeKind,
        now: Instant
    ) -> CompletionAction {
        guard var request = requests[id], request.serial == serial else {
            // Its request already left the table: the slot it kept is free now.
            if detachedTasks > 0 {
                detachedTasks -= 1
                releaseOneSlot()
            }
            return .none
        }
        request.taskRunning = false
        requests[id] = request
        if request.phase.isEnded {
            releaseOneSlot()
            return .none
        }
        guard phase == .open else {
            // The connection is already closing after a cut: nothing more goes out for any
            // request (nothing may follow the marker), and the slot this task kept is free.
            request.phase = .ended(stdinEnded: request.phase.stdinEnded)
            requests[id] = request
            releaseOneSlot()
            return .none
        }
        switch outcome {
        case .completed: return end(id, appStatus: 0, now: now).map { .end($0) } ?? .none
        case .failedAfterHead:
            // Flushed, then closed; the close deadline covers a web server that never reads.
            phase = .flushingThenClosing(since: now)
            return .cut(requestID: id)
        }
    }

    /// Ends request `id`: `FCGI_END_REQUEST` goes out, and the id leaves the table unless the
    /// read that caused this is still being decoded.
    private mutating func end(_ id: UInt16, appStatus: UInt32, now: Instant) -> EndAction? {
        guard var request = requests[id], !request.phase.isEnded else { return nil }
        request.phase = .ended(stdinEnded: request.phase.stdinEnded)
        requests[id] = request
        if !request.taskRunning { releaseOneSlot() }
        let releaseNow = !(isDecoding && !request.keepConnection)
        var close: CloseAction?
        if releaseNow {
            remove(id)
            close = closeIfIdle(now: now)
        } else {
            endedWhileDecoding.append(id)
        }
        return EndAction(
            requestID: id,
            serial: request.serial,
            payload: request.payload,
            appStatus: appStatus,
            releaseID: releaseNow,
            close: close,
            retiresKeptConnection: close != nil && request.keepConnection && isShuttingDown && !peerClosedInput
        )
    }

    /// Removes an ended request from the table.
    private mutating func remove(_ id: UInt16) {
        guard let request = requests.removeValue(forKey: id) else { return }
        if request.taskRunning { detachedTasks += 1 }
        if !request.keepConnection { closeWhenIdle = true }
        if !request.phase.stdinEnded { inputIsDrained = false }
    }

    // MARK: Closing

    /// Starts closing if asked to and nothing is in the table (and shutdown's linger is over).
    private mutating func closeIfIdle(now: Instant) -> CloseAction? {
        guard closeWhenIdle, requests.isEmpty, phase == .open else { return nil }
        if let lingerUntil, now < lingerUntil { return nil }
        if inputIsDrained, atRecordBoundary {
            phase = .flushingThenClosing(since: now)
            return .flushThenClose
        }
        phase = .halfClosedDraining(since: now, outputClosed: false)
        return .halfCloseThenDrain
    }

    /// Whether the decoder stands between records; its caller keeps this current.
    var atRecordBoundary = true

    /// The half-close went through. True: close now (shutting down, nobody to wait for).
    mutating func outputClosed() -> Bool {
        guard case .halfClosedDraining(let since, _) = phase else { return false }
        phase = .halfClosedDraining(since: since, outputClosed: true)
        return isShuttingDown
    }

    /// The web server closed its side. Returns what to do.
    mutating func peerClosedInput(
        now: Instant
    ) -> (
        ended: [EndAction], unfinishedBodies: [Payload], close: CloseAction?
    ) {
        switch phase {
        case .halfClosedDraining:
            // Draining after our half-close is over.
            phase = .closed
            return ([], [], .closeNow)
        case .open:
            return inputClosed(now: now)
        case .flushingThenClosing, .closed:
            return ([], [], nil)
        }
    }

    /// Graceful shutdown began. Requests in flight finish, and the connection closes right
    /// after the last one's `FCGI_END_REQUEST` is written (`retiresKeptConnection` tells the
    /// web server, in that write, not to keep the connection). An idle connection stays
    /// open for `linger` first, and a request arriving meanwhile is served the same way: a
    /// web server that holds kept connections (nginx reuses its most recent one first, without
    /// notice) may already be sending on it, and a close it races would fail that request
    /// (a 502 for a POST). What is still idle when `linger` ends has not been picked for that
    /// long, and is closed by `tick`. A half-closed connection is not waited for.
    mutating func shutdownRequested(now: Instant, linger: Duration) -> CloseAction? {
        guard !isShuttingDown else { return nil }
        isShuttingDown = true
        closeWhenIdle = true
        if case .halfClosedDraining(_, outputClosed: true) = phase {
            phase = .closed
            return .closeNow
        }
        if requests.isEmpty, linger > .zero { lingerUntil = now + linger }
        return closeIfIdle(now: now)
    }

    /// Malformed input or an error: close at once.
    mutating func failed() {
        phase = .closed
    }

    /// The channel closed. Returns the requests to interrupt (fail bodies, cancel tasks).
    /// Slots of those without a running task are released now; the others at their task's end.
    mutating func channelClosed() -> [Payload] {
        phase = .closed
        let interrupted = requests.values.filter { !$0.phase.isEnded }.map(\.payload)
        for (_, request) in requests {
            if request.taskRunning {
                detachedTasks += 1
            } else if !request.phase.isEnded {
                releaseOneSlot()
            }
        }
        requests.removeAll()
        return interrupted
    }

    // MARK: Deadlines

    /// The clock moved: checks every deadline.
    mutating func tick(now: Instant) -> TickAction {
        switch phase {
        case .closed:
            return .none
        case .flushingThenClosing(let since), .halfClosedDraining(let since, _):
            if let limit = configuration.closeTimeout, now - since >= limit {
                phase = .closed
                return .close(reason: "it could not finish closing within \(limit)")
            }
            return .none
        case .open:
            break
        }
        if let lingerUntil, now >= lingerUntil, requests.isEmpty, let close = closeIfIdle(now: now) {
            return .closeGracefully(close)
        }
        if let limit = configuration.stallTimeout, let since = unwritableSince, now - since >= limit {
            phase = .closed
            return .close(reason: "the web server read none of its output for \(limit)")
        }
        if let limit = configuration.paramsTimeout {
            let late = requests.values.contains {
                if case .awaitingParams(let since, _) = $0.phase { now - since >= limit } else { false }
            }
            if late {
                phase = .closed
                return .close(reason: "a request's params did not complete within \(limit)")
            }
        }
        if let limit = configuration.idleTimeout, now - lastActivity >= limit,
            !requests.values.contains(where: { $0.phase.isRunning })
        {
            phase = .closed
            return .close(
                reason: requests.isEmpty ? "idle" : "\(requests.count) request(s) idle with their params unfinished"
            )
        }
        // Bodies do not stall while reading is paused by us; once it is not, their clocks restart.
        if readingPaused {
            if pausedSince == nil { pausedSince = now }
            return .none
        }
        if pausedSince != nil { resumed(now: now) }
        if let limit = configuration.stallTimeout {
            var stalled: [UInt16] = []
            for (id, request) in requests {
                if case .receivingBody(let lastInput?) = request.phase, now - lastInput >= limit {
                    stalled.append(id)
                    // Failed once; the application answers (or not) as it likes.
                    requests[id]!.phase = .receivingBody(lastInput: nil)
                }
            }
            if !stalled.isEmpty { return .failStalledBodies(stalled.sorted()) }
        }
        return .none
    }
}

/// What the state machine needs to know of a `ResponseOutcome`.
enum ResponseOutcomeKind {
    /// End the request with `FCGI_END_REQUEST` (a complete response, or a 500 sent before any head).
    case completed
    /// The response was cut after its head went out (or its output failed).
    case failedAfterHead
}
