#if Vapor
import NIOCore
import Synchronization

/// Hands a streaming Vapor response body, one buffer at a time, from the task that runs
/// Vapor's body callback to the gateway's body writer.
///
/// The producer's `offer` returns once the consumer took the buffer; the consumer takes the
/// next only after it wrote the one before to the web server, so at most one buffer is in
/// flight and a slow client slows Vapor's stream down. When the consumer goes away (the
/// client hung up), a pending and every later `offer` throws, so the handler stops.
final class BufferHandoff: Sendable {
    private enum State {
        /// Nothing offered, nobody waiting.
        case idle
        /// The consumer waits for the next buffer.
        case consumerWaiting(CheckedContinuation<ByteBuffer?, any Error>)
        /// The producer waits for its buffer to be taken.
        case offered(ByteBuffer, CheckedContinuation<Void, any Error>)
        /// The producer ended, with an error or not.
        case finished((any Error)?)
        /// The consumer is gone.
        case abandoned
    }

    /// Thrown to the producer when the consumer is gone, and for misuse.
    struct Abandoned: Error, CustomStringConvertible {
        var description: String { "the response body's consumer is gone" }
    }

    private let state = Mutex<State>(.idle)

    /// Waits until `buffer` is taken; throws when the consumer is gone.
    func offer(_ buffer: ByteBuffer) async throws {
        try await withCheckedThrowingContinuation { (producer: CheckedContinuation<Void, any Error>) in
            let consumer: CheckedContinuation<ByteBuffer?, any Error>?? = state.withLock { state in
                switch state {
                case .idle:
                    state = .offered(buffer, producer)
                    return .some(nil)
                case .consumerWaiting(let consumer):
                    state = .idle
                    return .some(consumer)
                case .offered, .finished, .abandoned:
                    return .none
                }
            }
            switch consumer {
            case .none: producer.resume(throwing: Abandoned())
            case .some(.none): break
            case .some(.some(let consumer)):
                consumer.resume(returning: buffer)
                producer.resume()
            }
        }
    }

    /// Ends the stream: the consumer gets nil, or `error`.
    func finish(throwing error: (any Error)? = nil) {
        let consumer: CheckedContinuation<ByteBuffer?, any Error>? = state.withLock { state in
            switch state {
            case .idle:
                state = .finished(error)
                return nil
            case .consumerWaiting(let consumer):
                state = .finished(error)
                return consumer
            case .offered, .finished, .abandoned:
                return nil
            }
        }
        if let error { consumer?.resume(throwing: error) } else { consumer?.resume(returning: nil) }
    }

    /// The next buffer, or nil at the end; throws the producer's error, or `CancellationError`
    /// when the consuming task is cancelled while it waits.
    func next() async throws -> ByteBuffer? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (consumer: CheckedContinuation<ByteBuffer?, any Error>) in
                enum Outcome {
                    case wait
                    case take(ByteBuffer, CheckedContinuation<Void, any Error>)
                    case end((any Error)?)
                    case gone
                }
                let outcome: Outcome = state.withLock { state in
                    switch state {
                    case .idle:
                        state = .consumerWaiting(consumer)
                        return .wait
                    case .offered(let buffer, let producer):
                        state = .idle
                        return .take(buffer, producer)
                    case .finished(let error):
                        return .end(error)
                    case .consumerWaiting, .abandoned:
                        return .gone
                    }
                }
                switch outcome {
                case .wait: break
                case .take(let buffer, let producer):
                    consumer.resume(returning: buffer)
                    producer.resume()
                case .end(let error):
                    if let error { consumer.resume(throwing: error) } else { consumer.resume(returning: nil) }
                case .gone:
                    consumer.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            abandon()
        }
    }

    /// The consumer is gone: a waiting producer's `offer` throws, and so will every later one.
    func abandon() {
        let waiting: (CheckedContinuation<Void, any Error>?, CheckedContinuation<ByteBuffer?, any Error>?) =
            state.withLock { state in
                defer { state = .abandoned }
                switch state {
                case .offered(_, let producer): return (producer, nil)
                case .consumerWaiting(let consumer): return (nil, consumer)
                case .idle, .finished, .abandoned: return (nil, nil)
                }
            }
        waiting.0?.resume(throwing: Abandoned())
        waiting.1?.resume(throwing: CancellationError())
    }
}
#endif
