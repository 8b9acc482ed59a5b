import Gateway
import NIOCore
import Synchronization

/// The request body of one FastCGI request: `FCGI_STDIN` records, queued until the
/// application reads them.
///
/// The connection appends slices of what it read, each with the bytes it retains (see
/// `retaining(_:allocator:)`); the application's read copies each slice once into the
/// `[UInt8]` it receives and reports what it retained as released, so the connection can
/// bound what its bodies hold (`ServerLimits.bodyBufferBytes`) and pause reading past it.
final class StdinBodySource: RequestBodySource {
    private struct State {
        var chunks: CircularBuffer<(bytes: ByteBuffer, retained: Int)> = CircularBuffer(initialCapacity: 4)
        var retained = 0
        var finished = false
        var failure: (any Error)?
        /// The reader, parked until a chunk, the end or a failure arrives.
        var waiter: CheckedContinuation<Void, any Error>?
    }

    /// What a read finds.
    private enum Next {
        case chunk(ByteBuffer, retained: Int)
        case end
        case failed(any Error)
        case wait
    }

    private let state = Mutex(State())
    /// Called (from the reading task) with the retained bytes a read released.
    private let onConsumed: @Sendable (Int) -> Void

    init(onConsumed: @escaping @Sendable (Int) -> Void) {
        self.onConsumed = onConsumed
    }

    /// What each queued chunk costs besides its bytes (its storage object, the allocator's
    /// header, its queue entry), counted so that a flood of 1-byte records is bounded too.
    static let chunkOverhead = 128

    /// A slice to keep, and what keeping it retains. A slice under an eighth of its receive
    /// buffer is copied out (a 1-byte STDIN record must not pin a 256 KiB buffer); a larger
    /// one is kept as is and counted as its whole buffer.
    static func retaining(_ bytes: ByteBuffer, allocator: ByteBufferAllocator) -> (ByteBuffer, retained: Int) {
        let storage = bytes.storageCapacity
        if bytes.readableBytes < storage / 8 {
            var copy = allocator.buffer(capacity: bytes.readableBytes)
            copy.writeImmutableBuffer(bytes)
            return (copy, copy.storageCapacity + chunkOverhead)
        }
        return (bytes, storage + chunkOverhead)
    }

    /// Queues bytes from the wire. Returns false (and keeps nothing) when the body already
    /// ended or failed.
    func append(_ bytes: ByteBuffer, retained: Int) -> Bool {
        let (waiter, kept) = state.withLock { state -> (CheckedContinuation<Void, any Error>?, Bool) in
            guard !state.finished, state.failure == nil else { return (nil, false) }
            state.chunks.append((bytes, retained))
            state.retained += retained
            defer { state.waiter = nil }
            return (state.waiter, true)
        }
        waiter?.resume()
        return kept
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

    /// The request was aborted, ended or its connection closed: readers get `error`. Returns
    /// the retained bytes dropped.
    @discardableResult
    func fail(_ error: @autoclosure () -> any Error) -> Int {
        // A body that ended and was read to its end stays complete, and no error is made (every
        // request ends this way). Nothing is appended to an ended body, so it stays so.
        if state.withLock({ $0.finished && $0.chunks.isEmpty && $0.failure == nil }) { return 0 }
        let error = error()
        let (waiter, dropped) = state.withLock { state in
            state.failure = state.failure ?? error
            state.chunks.removeAll()
            let dropped = state.retained
            state.retained = 0
            defer { state.waiter = nil }
            return (state.waiter, dropped)
        }
        waiter?.resume()
        return dropped
    }

    nonisolated(nonsending) func read() async throws -> [UInt8]? {
        while true {
            switch state.withLock({ take(from: &$0) }) {
            case .chunk(let chunk, let retained):
                onConsumed(retained)
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

    /// The next chunk, the end, or the failure.
    private func take(from state: inout State) -> Next {
        if let failure = state.failure { return .failed(failure) }
        if let chunk = state.chunks.popFirst() {
            state.retained -= chunk.retained
            return .chunk(chunk.bytes, retained: chunk.retained)
        }
        return state.finished ? .end : .wait
    }
}
