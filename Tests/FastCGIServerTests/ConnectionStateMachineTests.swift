import FastCGI
import NIOCore
import Testing

@testable import FastCGIServer

/// The connection's rules, driven directly: no sockets, a clock of the test's own.
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine

    /// Counts the server-wide slots the machine takes and gives back.
    final class Slots {
        var held = 0
        var available: Int
        init(available: Int = 100) { self.available = available }
    }

    let start = MonotonicInstant.now
    let slots = Slots()

    func makeMachine(_ configure: (inout ServerLimits) -> Void = { _ in }) -> Machine {
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 300
        configure(&limits)
        let slots = self.slots
        return Machine(
            configuration: .init(limits),
            now: start,
            acquireSlot: {
                guard slots.held < slots.available else { return false }
                slots.held += 1
                return true
            },
            releaseSlot: { slots.held -= 1 }
        )
    }

    func at(_ seconds: Double) -> MonotonicInstant { start + .milliseconds(Int64(seconds * 1000)) }

    /// Begins request `id`; its serial, or 0 (and an issue) when it was refused.
    @discardableResult
    func begin(
        _ machine: inout Machine,
        _ id: UInt16,
        keep: Bool = false,
        at now: Double = 0,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> UInt64 {
        guard
            case .accept(let serial) = machine.begin(
                id: id,
                keepConnection: keep,
                roleAccepted: true,
                now: at(now),
                makePayload: { InFlightRequest(id: id, body: StdinBodySource(onConsumed: { _ in })) }
            )
        else {
            Issue.record("request \(id) refused", sourceLocation: sourceLocation)
            return 0
        }
        return serial
    }

    // MARK: Close and drain

    @Test func aRequestWithoutKeepConnWhoseBodyEndedClosesAfterAFlush() throws {
        var machine = makeMachine()
        let serial = begin(&machine, 1)
        let started = machine.paramsEnded(id: 1, now: at(0))
        #expect(started != nil)
        let finishedBody = machine.stdinEnded(id: 1)
        #expect(finishedBody?.id == 1)
        guard case .end(let end) = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(1)) else {
            Issue.record("not ended")
            return
        }
        #expect(end.appStatus == 0 && end.releaseID && end.close == .flushThenClose)
        #expect(machine.phase == .flushingThenClosing(since: at(1)))
        #expect(slots.held == 0)
    }

    @Test func aBodyStillOwedMeansHalfCloseThenDrainUntilThePeerCloses() throws {
        var machine = makeMachine()
        let serial = begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        guard case .end(let end) = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(1)) else {
            Issue.record("not ended")
            return
        }
        #expect(end.close == .halfCloseThenDrain)
        let closeAfterHalfClose = machine.outputClosed()
        #expect(closeAfterHalfClose == false)  // not shutting down: wait for the peer
        let afterPeerClose = machine.peerClosedInput(now: at(2))
        #expect(afterPeerClose.close == .closeNow)
        #expect(machine.phase == .closed)
    }

    @Test func aRecordCutMidwayIsDrainedNotReset() throws {
        var machine = makeMachine()
        let serial = begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = machine.stdinEnded(id: 1)
        machine.atRecordBoundary = false  // the STDIN end's padding is still on its way
        guard case .end(let end) = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(1)) else {
            Issue.record("not ended")
            return
        }
        #expect(end.close == .halfCloseThenDrain)
    }

    @Test func aKeptConnectionStaysOpenAndTheIDIsFreeAtOnce() throws {
        var machine = makeMachine()
        machine.decodingStarted()
        let serial = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        guard case .end(let end) = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(0)) else {
            Issue.record("not ended")
            return
        }
        #expect(end.releaseID && end.close == nil)
        #expect(machine.requests.isEmpty)
        let reused = begin(&machine, 1, keep: true)
        #expect(reused != 0)
        let decoded = machine.decodingFinished(backlog: false)
        #expect(decoded.released.isEmpty)
        #expect(machine.phase == .open)
    }

    // MARK: Re-entrancy: requests that end while their read is decoded

    @Test func aRequestEndedWhileDecodingKeepsItsIDUntilTheReadIsDone() throws {
        var machine = makeMachine()
        machine.decodingStarted()
        let serial = begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        // The application answered at once, inside the read.
        guard case .end(let end) = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(0)) else {
            Issue.record("not ended")
            return
        }
        #expect(!end.releaseID && end.close == nil)
        #expect(machine.request(1, serial: serial) == nil)  // late writes are refused
        // Its STDIN end is in the same bytes: seen, so no half-close is needed.
        let finishedBody = machine.stdinEnded(id: 1)
        #expect(finishedBody != nil)
        let (released, close) = machine.decodingFinished(backlog: false)
        #expect(released == [1])
        #expect(close == .flushThenClose)
    }

    @Test func anAbortFollowedByParamsInTheSameReadDoesNotStartTheApplication() throws {
        var machine = makeMachine()
        machine.decodingStarted()
        begin(&machine, 1)
        let aborted = machine.abort(id: 1, now: at(0))
        let end = try #require(aborted)
        #expect(end.appStatus == 1 && !end.releaseID)
        // The decoder still knows id 1 until the read is done, so it reports the params.
        let started = machine.paramsEnded(id: 1, now: at(0))
        #expect(started == nil)
        let stdinAction = machine.stdin(id: 1, count: 10, now: at(0))
        #expect(stdinAction.isIgnore)
        let aborted2 = machine.abort(id: 1, now: at(0))
        #expect(aborted2 == nil)
        let decoded = machine.decodingFinished(backlog: false)
        #expect(decoded.released == [1])
        #expect(slots.held == 0)
    }

    @Test func anAbortWhileTheApplicationRunsKeepsTheSlotUntilTheTaskReturns() throws {
        var machine = makeMachine { $0.maxRequestsPerConnection = 1 }
        let serial = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        let aborted = machine.abort(id: 1, now: at(0))
        let end = try #require(aborted)
        #expect(end.releaseID)
        #expect(slots.held == 1 && machine.requestsInFlight == 1 && machine.detachedTasks == 1)
        // The application ignores its cancellation: the connection's only slot stays taken.
        guard
            case .refuse(.overloaded, _, _) = machine.begin(
                id: 2,
                keepConnection: true,
                roleAccepted: true,
                now: at(1),
                makePayload: { InFlightRequest(id: 2, body: StdinBodySource(onConsumed: { _ in })) }
            )
        else {
            Issue.record("a slot was free while the aborted application still ran")
            return
        }
        guard case .none = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(2)) else {
            Issue.record("an ended request was ended twice")
            return
        }
        #expect(slots.held == 0 && machine.requestsInFlight == 0)
        let next = begin(&machine, 2, keep: true, at: 3)
        #expect(next != 0)
    }

    @Test func aTaskOfAReusedIDDoesNotEndItsSuccessor() throws {
        var machine = makeMachine()
        let first = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = machine.abort(id: 1, now: at(0))
        let second = begin(&machine, 1, keep: true)
        #expect(first != second)
        guard case .none = machine.taskFinished(id: 1, serial: first, outcome: .completed, now: at(1)) else {
            Issue.record("the old task ended the new request")
            return
        }
        #expect(machine.request(1, serial: second) != nil)
    }

    @Test func theChannelClosingInterruptsRequestsAndKeepsSlotsOfRunningTasks() throws {
        var machine = makeMachine()
        let serial = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = begin(&machine, 2, keep: true)
        let interrupted = machine.channelClosed()
        #expect(Set(interrupted.map(\.id)) == [1, 2])
        #expect(slots.held == 1)  // request 1's task still runs
        _ = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(1))
        #expect(slots.held == 0)
    }

    // MARK: Failure after the head

    @Test func aFailureAfterTheHeadCutsTheConnectionWithoutEndingTheRequest() throws {
        var machine = makeMachine()
        let serial = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        let other = begin(&machine, 2, keep: true)
        _ = machine.paramsEnded(id: 2, now: at(0))
        guard case .cut(1) = machine.taskFinished(id: 1, serial: serial, outcome: .failedAfterHead, now: at(1)) else {
            Issue.record("not cut")
            return
        }
        #expect(machine.isClosing)
        #expect(!machine.mayDecode)
        // Request 2 is cut with it: the close deadline then closes even a peer that never reads.
        #expect(machine.request(2, serial: other) != nil)
        let ticked = machine.tick(now: at(7))
        #expect(ticked == .close(reason: "it could not finish closing within 5.0 seconds"))
    }

    // MARK: Reading, bodies and output

    @Test func readingPausesWhileBodiesRetainTooMuchAndResumesOnceRead() throws {
        var machine = makeMachine { $0.bodyBufferBytes = 1000 }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        machine.bodyBuffered(1500)
        let readsNow = machine.readRequested()
        #expect(readsNow == false)
        let resumed = machine.takePendingRead(now: at(1))
        #expect(resumed == false)
        machine.bodyBuffered(-1000)
        let resumed2 = machine.takePendingRead(now: at(1))
        #expect(resumed2 == true)
        let resumed3 = machine.takePendingRead(now: at(1))
        #expect(resumed3 == false)  // issued once
    }

    @Test func outputOverItsBoundStopsDecodingAndReading() throws {
        var machine = makeMachine()
        machine.writabilityChanged(false, now: at(0))
        #expect(!machine.mayDecode)
        let readsNow = machine.readRequested()
        #expect(readsNow == false)
        machine.writabilityChanged(true, now: at(1))
        #expect(machine.mayDecode)
        let resumed = machine.takePendingRead(now: at(1))
        #expect(resumed)
        // Input left undecoded holds reading too.
        machine.decodingStarted()
        _ = machine.decodingFinished(backlog: true)
        let readsNow2 = machine.readRequested()
        #expect(readsNow2 == false)
    }

    @Test func aBodyOverTheLimitFailsOnceThenIsDropped() throws {
        var machine = makeMachine { $0.maxBodyBytes = 100 }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        let stdinAction = machine.stdin(id: 1, count: 100, now: at(0))
        #expect(stdinAction.isAppend)
        guard case .overLimit(_, 100) = machine.stdin(id: 1, count: 1, now: at(0)) else {
            Issue.record("not over the limit")
            return
        }
        let stdinAction2 = machine.stdin(id: 1, count: 1, now: at(0))
        #expect(stdinAction2.isIgnore)
        // No overflow at the edge.
        let stdinAction3 = machine.stdin(id: 1, count: .max, now: at(0))
        #expect(stdinAction3.isIgnore)
    }

    @Test func aTinySliceIsCopiedOutOfItsReceiveBufferAndALargeOneCountsAllOfIt() {
        var read = ByteBufferAllocator().buffer(capacity: 256 << 10)
        read.writeRepeatingByte(1, count: 256 << 10)
        let tiny = read.getSlice(at: 1000, length: 1)!
        let (kept, retained) = StdinBodySource.retaining(tiny, allocator: ByteBufferAllocator())
        #expect(kept.storageCapacity < 1024, "the 1-byte slice still pins the 256 KiB buffer")
        #expect(retained == kept.storageCapacity + StdinBodySource.chunkOverhead)
        let large = read.getSlice(at: 0, length: 64 << 10)!
        let (_, counted) = StdinBodySource.retaining(large, allocator: ByteBufferAllocator())
        #expect(counted >= 256 << 10)
    }

    // MARK: Deadlines

    @Test func paramsMustCompleteWithinTheirDeadlineHoweverTheyTrickle() throws {
        var machine = makeMachine { $0.paramsTimeoutSeconds = 60 }
        begin(&machine, 1)
        // A byte every 2 s: activity, but the params never end.
        for second in stride(from: 2.0, through: 58, by: 2) {
            _ = machine.inputArrived(now: at(second))
            let ticked = machine.tick(now: at(second))
            #expect(ticked == .none)
        }
        let ticked2 = machine.tick(now: at(60))
        #expect(ticked2 == .close(reason: "a request's params did not complete within 60.0 seconds"))
    }

    @Test func aBodyThatStopsArrivingFailsAfterTheStallTimeout() throws {
        var machine = makeMachine { $0.stallTimeoutSeconds = 60 }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = machine.stdin(id: 1, count: 10, now: at(30))
        let ticked = machine.tick(now: at(89))
        #expect(ticked == .none)
        let ticked2 = machine.tick(now: at(90))
        #expect(ticked2 == .failStalledBodies([1]))
        let ticked3 = machine.tick(now: at(200))
        #expect(ticked3 == .none)  // once
    }

    @Test func aBodyWaitingOnUsDoesNotStall() throws {
        var machine = makeMachine {
            $0.stallTimeoutSeconds = 60
            $0.bodyBufferBytes = 10
        }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        machine.bodyBuffered(100)  // the application does not read: reading pauses
        let readsNow = machine.readRequested()
        #expect(readsNow == false)
        let ticked = machine.tick(now: at(120))
        #expect(ticked == .none)
        machine.bodyBuffered(-100)
        let resumed = machine.takePendingRead(now: at(120))
        #expect(resumed)
        let ticked2 = machine.tick(now: at(150))
        #expect(ticked2 == .none)
        let ticked3 = machine.tick(now: at(180))
        #expect(ticked3 == .failStalledBodies([1]))
    }

    @Test func aPauseForOutputThatEndsWithoutAHeldReadStillLetsBodiesStall() {
        var machine = makeMachine { $0.stallTimeoutSeconds = 60 }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        machine.writabilityChanged(false, now: at(10))
        let whilePaused = machine.tick(now: at(65))
        #expect(whilePaused == .none)  // 65 s without body bytes, but we were not reading
        machine.writabilityChanged(true, now: at(66))
        let afterPause = machine.tick(now: at(67))
        #expect(afterPause == .none)
        let notYet = machine.tick(now: at(126))
        #expect(notYet == .none)
        let stalled = machine.tick(now: at(127))
        #expect(stalled == .failStalledBodies([1]))
    }

    @Test func outputThatNeverDrainsClosesAfterTheStallTimeout() {
        var machine = makeMachine { $0.stallTimeoutSeconds = 60 }
        machine.writabilityChanged(false, now: at(10))
        let ticked = machine.tick(now: at(69))
        #expect(ticked == .none)
        let ticked2 = machine.tick(now: at(70))
        #expect(ticked2 == .close(reason: "the web server read none of its output for 60.0 seconds"))
    }

    @Test func aFlushThenCloseThatNeverFlushesIsClosedAfterTheCloseTimeout() throws {
        var machine = makeMachine { $0.closeTimeoutSeconds = 5 }
        let shutdownClose = machine.shutdownRequested(now: at(1), linger: .zero)
        #expect(shutdownClose == .flushThenClose)
        let ticked = machine.tick(now: at(5))
        #expect(ticked == .none)
        let ticked2 = machine.tick(now: at(6))
        #expect(ticked2 == .close(reason: "it could not finish closing within 5.0 seconds"))
    }

    // MARK: Graceful shutdown

    /// Ends request `id` (params, body and task) at `now`; the close that came with its end.
    func finish(_ machine: inout Machine, _ id: UInt16, serial: UInt64, at now: Double) -> Machine.CloseAction?? {
        _ = machine.paramsEnded(id: id, now: at(now))
        _ = machine.stdinEnded(id: id)
        guard case .end(let end) = machine.taskFinished(id: id, serial: serial, outcome: .completed, now: at(now))
        else {
            return nil
        }
        return .some(end.close)
    }

    @Test func anIdleConnectionAtShutdownLingersThenCloses() {
        var machine = makeMachine()
        let first = begin(&machine, 1, keep: true)
        #expect(finish(&machine, 1, serial: first, at: 0) == .some(nil))  // kept
        let atShutdown = machine.shutdownRequested(now: at(1), linger: .milliseconds(250))
        #expect(atShutdown == nil)
        let during = machine.tick(now: at(1.2))
        #expect(during == .none && machine.phase == .open)
        let after = machine.tick(now: at(1.25))
        #expect(after == .closeGracefully(.flushThenClose))
        #expect(machine.phase == .flushingThenClosing(since: at(1.25)))
    }

    /// nginx reuses a kept connection without notice: a request that arrives while the
    /// connection lingers is served, and the connection closes with its END_REQUEST.
    @Test func aRequestArrivingDuringTheLingerIsServedThenTheConnectionCloses() {
        var machine = makeMachine()
        let first = begin(&machine, 1, keep: true)
        _ = finish(&machine, 1, serial: first, at: 0)
        _ = machine.shutdownRequested(now: at(1), linger: .milliseconds(250))
        let second = begin(&machine, 1, keep: true, at: 1.1)
        #expect(second != 0, "refused during the linger: a 502 at nginx")
        // Past the linger, but the request runs: nothing closes.
        let running = machine.tick(now: at(2))
        #expect(running == .none && machine.phase == .open)
        #expect(finish(&machine, 1, serial: second, at: 2) == .some(.flushThenClose))
        #expect(slots.held == 0)
    }

    @Test func aRequestInFlightAtShutdownClosesTheConnectionWithItsEnd() {
        var machine = makeMachine()
        let serial = begin(&machine, 1, keep: true)
        let atShutdown = machine.shutdownRequested(now: at(0.5), linger: .milliseconds(250))
        #expect(atShutdown == nil)
        // Not after the linger, but right at its END_REQUEST, however soon, and telling the
        // web server that asked to keep the connection not to.
        _ = machine.paramsEnded(id: 1, now: at(0.6))
        _ = machine.stdinEnded(id: 1)
        guard case .end(let end) = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(0.6))
        else {
            Issue.record("not ended")
            return
        }
        #expect(end.close == .flushThenClose && end.retiresKeptConnection)
    }

    @Test func onlyAKeptConnectionThatClosesIsRetired() {
        var machine = makeMachine()
        let kept = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = machine.stdinEnded(id: 1)
        guard case .end(let stays) = machine.taskFinished(id: 1, serial: kept, outcome: .completed, now: at(0)) else {
            Issue.record("not ended")
            return
        }
        #expect(stays.close == nil && !stays.retiresKeptConnection)
        let single = begin(&machine, 2, keep: false)
        _ = machine.paramsEnded(id: 2, now: at(0))
        _ = machine.stdinEnded(id: 2)
        guard case .end(let closes) = machine.taskFinished(id: 2, serial: single, outcome: .completed, now: at(0))
        else {
            Issue.record("not ended")
            return
        }
        // Without KEEP_CONN the web server closes or drops the connection itself.
        #expect(!closes.retiresKeptConnection)
    }

    /// A peer multiplexing on a busy connection gets FCGI_OVERLOADED for new requests during
    /// shutdown (it can send them elsewhere); the requests it has in flight finish.
    @Test func aMultiplexingPeerIsRefusedNewRequestsDuringShutdown() {
        var machine = makeMachine()
        let first = begin(&machine, 1, keep: true)
        _ = machine.shutdownRequested(now: at(0), linger: .milliseconds(250))
        let second = machine.begin(
            id: 2,
            keepConnection: true,
            roleAccepted: true,
            now: at(0.1),
            makePayload: { InFlightRequest(id: 2, body: StdinBodySource(onConsumed: { _ in })) }
        )
        guard case .refuse(let status, let reason, let close) = second else {
            Issue.record("request 2 accepted on a busy connection during shutdown")
            return
        }
        #expect(status == .overloaded && reason == "shutting down" && close == nil)
        #expect(finish(&machine, 1, serial: first, at: 0.2) == .some(.flushThenClose))
    }

    /// Found by review: a refusal once cleared the linger, and a kept connection then stayed
    /// open, idle, until the grace period cut it.
    @Test(arguments: [false, true])
    func aRequestRefusedDuringTheLingerLeavesTheLingerToCloseTheConnection(roleAccepted: Bool) {
        slots.available = roleAccepted ? 0 : 100  // refused for want of a slot, or for its role
        var machine = makeMachine()
        _ = machine.shutdownRequested(now: at(0), linger: .milliseconds(250))
        let action = machine.begin(
            id: 1,
            keepConnection: true,
            roleAccepted: roleAccepted,
            now: at(0.1),
            makePayload: { InFlightRequest(id: 1, body: StdinBodySource(onConsumed: { _ in })) }
        )
        guard case .refuse(_, _, nil) = action else {
            Issue.record("not refused, or refused with a close: \(action)")
            return
        }
        let closed = machine.tick(now: at(0.25))
        #expect(closed == .closeGracefully(.flushThenClose))
    }

    @Test func aWebServerClosingItsSideEndsTheLinger() {
        var machine = makeMachine()
        _ = machine.shutdownRequested(now: at(0), linger: .seconds(10))
        let closed = machine.peerClosedInput(now: at(0.1))
        #expect(closed.close == .flushThenClose)
    }

    @Test func idleMeansNoInputAndNoApplicationRunning() throws {
        var machine = makeMachine { $0.idleTimeoutSeconds = 10 }
        let serial = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = machine.stdinEnded(id: 1)
        let ticked = machine.tick(now: at(20))
        #expect(ticked == .none)  // the application runs
        _ = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(20))
        let ticked2 = machine.tick(now: at(20))
        #expect(ticked2 == .close(reason: "idle"))
    }

    @Test func timeoutsOfZeroNeverFireAndHugeOnesDoNotTrap() {
        var machine = makeMachine {
            $0.idleTimeoutSeconds = 0
            $0.paramsTimeoutSeconds = .max
            $0.stallTimeoutSeconds = -1
            $0.closeTimeoutSeconds = .max
            $0.maxRequestsPerConnection = .max
        }
        begin(&machine, 1)
        machine.writabilityChanged(false, now: at(0))
        let ticked = machine.tick(now: at(1_000_000))
        #expect(ticked == .none)
    }
}

extension ConnectionStateMachine.StdinAction {
    var isIgnore: Bool { if case .ignore = self { true } else { false } }
    var isAppend: Bool { if case .append = self { true } else { false } }
}
