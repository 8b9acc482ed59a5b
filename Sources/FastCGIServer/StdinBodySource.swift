import Gateway
import NIOCore
import Synchronization

/// The request body of one FastCGI request: `FCGI_STDIN` records, queued until the
/// application reads them.
///
/// The connection appends slices of what it read (no copy); the application's read copies
/// each slice once into the `[UInt8]` it receives. The queue is bounded: past
/// `highWatermark` bytes the connection pauses reading until the application drains it.
final class StdinBodySource: RequestBodySource {
    private struct State {
        var chunks: CircularBuffer<ByteBuffer> = CircularBuffer(initialCapacity: 4)
        var bufferedBytes = 0
        var finished = false
        var failure: (any Error)?
        /// The reader, parked until a chunk, the end or a failure arrives.
        var waiter: CheckedContinuation<Void, any Error>?
        var isOverWatermark = false
    }

    /// What a read finds.
    private enum Next {
        case chunk(ByteBuffer, drained: Bool)
        case end
        case failed(any Error)
        case wait
    }

    private let state = Mutex(State())
    private let highWatermark: Int
    /// Called (from the reading task) when the buffer has drained below the watermark again.
    private let onDrained: @Sendable () -> Void

    init(highWatermark: Int, onDrained: @escaping @Sendable () -> Void) {
        self.highWatermark = highWatermark
        self.onDrained = onDrained
    }

    /// Queues bytes from the wire. Returns true when the buffer just went over its watermark,
    /// so the connection should stop reading.
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

    /// The web server sent the empty `FCGI_STDIN` record.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The request was aborted or its connection closed: readers get `error`. Returns whether
    /// this source was holding the connection's reading paused.
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
                // Parked until append, finish or fail wakes it; then it takes again.
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

    /// The next chunk, the end, or the failure, with the watermark bookkeeping in one place.
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
