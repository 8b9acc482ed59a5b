import FastCGI
import Testing

@testable import FastCGIServer

/// The connection's rules, driven directly: no sockets, a clock of the test's own.
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<String>

    /// Counts the server-wide slots the machine takes and gives back.
    final class Slots {
        var held = 0
        var available: Int
        init(available: Int = 100) { self.available = available }
    }

    let start = ContinuousClock.now
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

    func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }

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
                makePayload: { "request \(id)" }
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
        let r1 = machine.paramsEnded(id: 1, now: at(0))
        #expect(r1 != nil)
        let r2 = machine.stdinEnded(id: 1)
        #expect(r2 == "request 1")
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
        let r3 = machine.outputClosed()
        #expect(r3 == false)  // not shutting down: wait for the peer
        let r4 = machine.peerClosedInput(now: at(2))
        #expect(r4.close == .closeNow)
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
        let r5 = machine.decodingFinished(backlog: false)
        #expect(r5.released.isEmpty)
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
        let r6 = machine.stdinEnded(id: 1)
        #expect(r6 != nil)
        let (released, close) = machine.decodingFinished(backlog: false)
        #expect(released == [1])
        #expect(close == .flushThenClose)
    }

    @Test func anAbortFollowedByParamsInTheSameReadDoesNotStartTheApplication() throws {
        var machine = makeMachine()
        machine.decodingStarted()
        begin(&machine, 1)
        let r7 = machine.abort(id: 1, now: at(0))
        let end = try #require(r7)
        #expect(end.appStatus == 1 && !end.releaseID)
        // The decoder still knows id 1 until the read is done, so it reports the params.
        let r8 = machine.paramsEnded(id: 1, now: at(0))
        #expect(r8 == nil)
        let r9 = machine.stdin(id: 1, count: 10, now: at(0))
        #expect(r9.isIgnore)
        let r10 = machine.abort(id: 1, now: at(0))
        #expect(r10 == nil)
        let r11 = machine.decodingFinished(backlog: false)
        #expect(r11.released == [1])
        #expect(slots.held == 0)
    }

    @Test func anAbortWhileTheApplicationRunsKeepsTheSlotUntilTheTaskReturns() throws {
        var machine = makeMachine { $0.maxRequestsPerConnection = 1 }
        let serial = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        let r12 = machine.abort(id: 1, now: at(0))
        let end = try #require(r12)
        #expect(end.releaseID)
        #expect(slots.held == 1 && machine.requestsInFlight == 1 && machine.detachedTasks == 1)
        // The application ignores its cancellation: the connection's only slot stays taken.
        guard
            case .refuse(.overloaded, _, _) = machine.begin(
                id: 2,
                keepConnection: true,
                roleAccepted: true,
                now: at(1),
                makePayload: { "2" }
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
        let r13 = machine.channelClosed()
        #expect(Set(r13) == ["request 1", "request 2"])
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
        let r14 = machine.tick(now: at(7))
        #expect(r14 == .close(reason: "it could not finish closing within 5.0 seconds"))
    }

    // MARK: Reading, bodies and output

    @Test func readingPausesWhileBodiesRetainTooMuchAndResumesOnceRead() throws {
        var machine = makeMachine { $0.bodyBufferBytes = 1000 }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        machine.bodyBuffered(1500)
        let r15 = machine.readRequested()
        #expect(r15 == false)
        let r16 = machine.takePendingRead(now: at(1))
        #expect(r16 == false)
        machine.bodyBuffered(-1000)
        let r17 = machine.takePendingRead(now: at(1))
        #expect(r17 == true)
        let r18 = machine.takePendingRead(now: at(1))
        #expect(r18 == false)  // issued once
    }

    @Test func outputOverItsBoundStopsDecodingAndReading() throws {
        var machine = makeMachine()
        machine.writabilityChanged(false, now: at(0))
        #expect(!machine.mayDecode)
        let r19 = machine.readRequested()
        #expect(r19 == false)
        machine.writabilityChanged(true, now: at(1))
        #expect(machine.mayDecode)
        let r20 = machine.takePendingRead(now: at(1))
        #expect(r20)
        // Input left undecoded holds reading too.
        machine.decodingStarted()
        _ = machine.decodingFinished(backlog: true)
        let r21 = machine.readRequested()
        #expect(r21 == false)
    }

    @Test func aBodyOverTheLimitFailsOnceThenIsDropped() throws {
        var machine = makeMachine { $0.maxBodyBytes = 100 }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        let r22 = machine.stdin(id: 1, count: 100, now: at(0))
        #expect(r22.isAppend)
        guard case .overLimit(_, 100) = machine.stdin(id: 1, count: 1, now: at(0)) else {
            Issue.record("not over the limit")
            return
        }
        let r23 = machine.stdin(id: 1, count: 1, now: at(0))
        #expect(r23.isIgnore)
        // No overflow at the edge.
        let r24 = machine.stdin(id: 1, count: .max, now: at(0))
        #expect(r24.isIgnore)
    }

    // MARK: Deadlines

    @Test func paramsMustCompleteWithinTheirDeadlineHoweverTheyTrickle() throws {
        var machine = makeMachine { $0.paramsTimeoutSeconds = 60 }
        begin(&machine, 1)
        // A byte every 2 s: activity, but the params never end.
        for second in stride(from: 2.0, through: 58, by: 2) {
            _ = machine.inputArrived(now: at(second))
            let r25 = machine.tick(now: at(second))
            #expect(r25 == .none)
        }
        let r26 = machine.tick(now: at(60))
        #expect(r26 == .close(reason: "a request's params did not complete within 60.0 seconds"))
    }

    @Test func aBodyThatStopsArrivingFailsAfterTheStallTimeout() throws {
        var machine = makeMachine { $0.stallTimeoutSeconds = 60 }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = machine.stdin(id: 1, count: 10, now: at(30))
        let r27 = machine.tick(now: at(89))
        #expect(r27 == .none)
        let r28 = machine.tick(now: at(90))
        #expect(r28 == .failStalledBodies([1]))
        let r29 = machine.tick(now: at(200))
        #expect(r29 == .none)  // once
    }

    @Test func aBodyWaitingOnUsDoesNotStall() throws {
        var machine = makeMachine {
            $0.stallTimeoutSeconds = 60
            $0.bodyBufferBytes = 10
        }
        begin(&machine, 1)
        _ = machine.paramsEnded(id: 1, now: at(0))
        machine.bodyBuffered(100)  // the application does not read: reading pauses
        let r30 = machine.readRequested()
        #expect(r30 == false)
        let r31 = machine.tick(now: at(120))
        #expect(r31 == .none)
        machine.bodyBuffered(-100)
        let r32 = machine.takePendingRead(now: at(120))
        #expect(r32)
        let r33 = machine.tick(now: at(150))
        #expect(r33 == .none)
        let r34 = machine.tick(now: at(180))
        #expect(r34 == .failStalledBodies([1]))
    }

    @Test func outputThatNeverDrainsClosesAfterTheStallTimeout() {
        var machine = makeMachine { $0.stallTimeoutSeconds = 60 }
        machine.writabilityChanged(false, now: at(10))
        let r35 = machine.tick(now: at(69))
        #expect(r35 == .none)
        let r36 = machine.tick(now: at(70))
        #expect(r36 == .close(reason: "the web server read none of its output for 60.0 seconds"))
    }

    @Test func aFlushThenCloseThatNeverFlushesIsClosedAfterTheCloseTimeout() throws {
        var machine = makeMachine { $0.closeTimeoutSeconds = 5 }
        let r37 = machine.shutdownRequested(now: at(1))
        #expect(r37 == .flushThenClose)
        let r38 = machine.tick(now: at(5))
        #expect(r38 == .none)
        let r39 = machine.tick(now: at(6))
        #expect(r39 == .close(reason: "it could not finish closing within 5.0 seconds"))
    }

    @Test func idleMeansNoInputAndNoApplicationRunning() throws {
        var machine = makeMachine { $0.idleTimeoutSeconds = 10 }
        let serial = begin(&machine, 1, keep: true)
        _ = machine.paramsEnded(id: 1, now: at(0))
        _ = machine.stdinEnded(id: 1)
        let r40 = machine.tick(now: at(20))
        #expect(r40 == .none)  // the application runs
        _ = machine.taskFinished(id: 1, serial: serial, outcome: .completed, now: at(20))
        let r41 = machine.tick(now: at(20))
        #expect(r41 == .close(reason: "idle"))
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
        let r42 = machine.tick(now: at(1_000_000))
        #expect(r42 == .none)
    }
}

extension ConnectionStateMachine.StdinAction {
    var isIgnore: Bool { if case .ignore = self { true } else { false } }
    var isAppend: Bool { if case .append = self { true } else { false } }
}
