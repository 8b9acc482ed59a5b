#if Vapor
import NIOCore
import Vapor

/// Vapor's `AsyncBodyStreamWriter` over a ``BufferHandoff``: each buffer is taken by the
/// gateway's writer before `write` returns; `.end` and `.error` end the handoff.
struct HandoffAsyncBodyWriter: AsyncBodyStreamWriter {
    let handoff: BufferHandoff

    func write(_ result: BodyStreamResult) async throws {
        switch result {
        case .buffer(let buffer):
            guard buffer.readableBytes > 0 else { return }
            try await handoff.offer(buffer)
        case .end: handoff.finish()
        case .error(let error): handoff.finish(throwing: error)
        }
    }
}

/// Vapor's future-based `BodyStreamWriter` over a ``BufferHandoff``: writes are queued in
/// order and each one's promise succeeds once the gateway's writer took its buffer, so a
/// writer that waits for its futures (as Vapor's file streaming does) is slowed down by the client.
struct HandoffBodyWriter: BodyStreamWriter {
    let eventLoop: any EventLoop
    let queue: AsyncStream<(BodyStreamResult, EventLoopPromise<Void>?)>.Continuation

    func write(_ result: BodyStreamResult, promise: EventLoopPromise<Void>?) {
        if case .terminated = queue.yield((result, promise)) {
            promise?.fail(BufferHandoff.Abandoned())
        }
    }

    /// Runs `callback` with a writer whose writes go, in order, through `handoff`; returns when
    /// the stream ended, or the task was cancelled. Writes queued after the end or a failure
    /// fail their promises (the handoff refuses them).
    static func run(
        _ callback: @escaping @Sendable (any BodyStreamWriter) -> Void,
        on eventLoop: any EventLoop,
        into handoff: BufferHandoff
    ) async {
        let (results, queue) = AsyncStream<(BodyStreamResult, EventLoopPromise<Void>?)>.makeStream()
        callback(HandoffBodyWriter(eventLoop: eventLoop, queue: queue))
        for await (result, promise) in results {
            do {
                switch result {
                case .buffer(let buffer):
                    if buffer.readableBytes > 0 { try await handoff.offer(buffer) }
                    promise?.succeed()
                case .end:
                    handoff.finish()
                    promise?.succeed()
                    queue.finish()
                case .error(let error):
                    handoff.finish(throwing: error)
                    promise?.succeed()
                    queue.finish()
                }
            } catch {
                promise?.fail(error)
                queue.finish()
            }
        }
    }
}
#endif
