import Gateway
import NIOCore
import Synchronization

/// The body of one HTTP request as it arrives: chunks queued until the application reads them.
///
/// The queue is bounded: past `highWatermark` bytes the connection stops reading from the
/// socket until the application has drained half of it, so a large upload never piles up in
/// memory (TCP's window pushes back on the client instead).
final class HTTPRequestBodySource: RequestBodySource {
    private struct State {
        var chunks: CircularBuffer<ByteBuffer> = CircularBuffer(initialCapacity: 4)
        var bufferedBytes = 0
        var finished = false
        var failure: (any Error)?
        var waiter: CheckedContinuation<Void, any Error>?
        var isOverWatermark = false
    }

    private enum Next {
        case chunk(ByteBuffer, drained: Bool)
        case end
        case failed(any Error)
        case wait
    }

    private let state = Mutex(State())
    private let highWatermark: Int
    /// Called (from the reading task) when the buffer drained below half the watermark again.
    private let onDrained: @Sendable () -> Void

    init(highWatermark: Int, onDrained: @escaping @Sendable () -> Void) {
        self.highWatermark = highWatermark
        self.onDrained = onDrained
    }

    /// Queues bytes from the socket. Returns true when the buffer just went over its
    /// watermark, so the connection should stop reading.
    func append(_ bytes: ByteBuffer) -> Bool {
        let (waiter, crossed) = state.withLock { state -> (CheckedContinuation<Void, any Error>?, Bool) in
            guard !state.finished, state.failure == nil else { return (nil, false) }
            state.chunks.append(bytes)
            state.bufferedBytes += bytes.readableBytes
            var crossed = false
            if !state.isOverWatermark && state.bufferedBytes > highWatermark {
                state.isOverWatermark = true
                crossed = true
            }
            defer { state.waiter = nil }
            return (state.waiter, crossed)
        }
        waiter?.resume()
        return crossed
    }

    /// The request's body ended.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Readers get `error` from now on. Returns whether this source was holding reading paused.
    @discardableResult
    func fail(_ error: any Error) -> Bool {
        let (waiter, wasOver) = state.withLock { state in
            state.failure = state.failure ?? error
            state.chunks.removeAll()
            state.bufferedBytes = 0
            let wasOver = state.isOverWatermark
            state.isOverWatermark = false
            defer { state.waiter = nil }
            return (state.waiter, wasOver)
        }
        waiter?.resume()
        return wasOver
    }

    nonisolated(nonsending) func read() async throws -> [UInt8]? {
        while true {
            switch state.withLock({ take(from: &$0) }) {
            case .chunk(let chunk, let drained):
                if drained { onDrained() }
                return Array(chunk.readableBytesView)
            case .end:
                return nil
            case .failed(let error):
                throw error
            case .wait:
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let parked = state.withLock { state in
                        guard state.failure == nil, state.chunks.isEmpty, !state.finished else { return false }
                        state.waiter = continuation
                        return true
                    }
                    if !parked { continuation.resume() }
                }
            }
        }
    }

    private func take(from state: inout State) -> Next {
        if let failure = state.failure { return .failed(failure) }
        if let chunk = state.chunks.popFirst() {
            state.bufferedBytes -= chunk.readableBytes
            var drained = false
            if state.isOverWatermark && state.bufferedBytes <= highWatermark / 2 {
                state.isOverWatermark = false
                drained = true
            }
            return .chunk(chunk, drained: drained)
        }
        return state.finished ? .end : .wait
    }
}
