import FastCGI
import NIOCore

/// One client connection: sends requests on ids 1...inFlight, decodes the answers, and keeps
/// every id busy while the run hands out requests.
final class LoadConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The state of one request id on this connection.
    private struct Slot {
        var isActive = false
        var started: UInt64 = 0
        var sawHead = false
        var isError = false
    }

    private let run: LoadRun
    private var decoder = ResponseDecoder()
    private var slots: [Slot]
    private var active = 0
    private var context: ChannelHandlerContext?
    private var isAbandoned = false

    init(run: LoadRun) {
        self.run = run
        self.slots = Array(repeating: Slot(), count: run.plan.inFlight)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        for index in slots.indices where run.takeRequest() { send(index: index, context: context) }
        context.flush()
        if active == 0 { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        do {
            while let event = try decoder.next(from: &buffer) {
                handle(event, context: context)
            }
        } catch {
            run.socketError()
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        if active > 0, !isAbandoned { run.lost(requests: active) }
        active = 0
        run.closed(self)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run.socketError()
        context.close(promise: nil)
    }

    /// Closes the connection once nothing is in flight on it (the run is stopping).
    func closeIfIdle() {
        if active == 0 { context?.close(promise: nil) }
    }

    /// Closes at once; whatever is in flight has already been counted as timed out.
    func abandon() {
        isAbandoned = true
        context?.close(promise: nil)
    }

    // MARK: Requests

    private func send(index: Int, context: ChannelHandlerContext) {
        slots[index] = Slot(isActive: true, started: NIODeadline.now().uptimeNanoseconds)
        active += 1
        context.write(wrapOutboundOut(run.plan.heads[index]), promise: nil)
        guard run.plan.uploadBytes > 0 else { return }
        let body = run.plan.uploads[index]
        for _ in 0..<body.blockCount {
            context.write(wrapOutboundOut(body.block), promise: nil)
        }
        context.write(wrapOutboundOut(body.tail), promise: nil)
        run.sent(bodyBytes: run.plan.uploadBytes)
    }

    private func handle(_ event: ResponseEvent, context: ChannelHandlerContext) {
        switch event {
        case .stdout(let id, let bytes):
            run.received(stdoutBytes: bytes.readableBytes)
            guard let index = activeIndex(id), !slots[index].sawHead else { return }
            slots[index].sawHead = true
            slots[index].isError = !ResponseHead.isSuccess(bytes)
        case .endRequest(let id, _, let protocolStatus):
            guard let index = activeIndex(id) else { return }
            let slot = slots[index]
            slots[index].isActive = false
            active -= 1
            run.finished(
                latencyNanoseconds: NIODeadline.now().uptimeNanoseconds &- slot.started,
                succeeded: protocolStatus == .requestComplete && slot.sawHead && !slot.isError
            )
            if run.plan.keepConnection, run.takeRequest() {
                send(index: index, context: context)
            } else if active == 0 {
                context.close(promise: nil)
            }
        case .stdoutEnd, .stderr, .stderrEnd, .getValuesResult, .unknownType:
            return
        }
    }

    private func activeIndex(_ id: UInt16) -> Int? {
        let index = Int(id) - 1
        guard slots.indices.contains(index), slots[index].isActive else { return nil }
        return index
    }
}

/// Reads the status of a CGI response from the first bytes of its head.
enum ResponseHead {
    /// True unless a `Status:` header in `bytes` names a status outside 2xx. Only the first
    /// STDOUT record is looked at, which holds the whole head for every sane application.
    static func isSuccess(_ bytes: ByteBuffer) -> Bool {
        bytes.withUnsafeReadableBytes { raw in
            var lineStart = 0
            while lineStart < raw.count {
                var lineEnd = lineStart
                while lineEnd < raw.count, raw[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                let line = UnsafeRawBufferPointer(rebasing: raw[lineStart..<lineEnd])
                // A blank line ends the head.
                if line.isEmpty || (line.count == 1 && line[0] == UInt8(ascii: "\r")) { return true }
                if let digit = statusDigit(line) { return digit == UInt8(ascii: "2") }
                lineStart = lineEnd + 1
            }
            return true
        }
    }

    /// The first digit of a `Status: NNN` line, case-insensitively; nil for any other line.
    private static func statusDigit(_ line: UnsafeRawBufferPointer) -> UInt8? {
        let name = Array("status:".utf8)
        guard line.count > name.count else { return nil }
        for (offset, expected) in name.enumerated() where line[offset] | 0x20 != expected | 0x20 {
            return nil
        }
        return line[name.count...].first { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
    }
}
