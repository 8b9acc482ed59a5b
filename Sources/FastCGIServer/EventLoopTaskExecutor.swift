import NIOCore

/// Runs a request's task on its connection's event loop.
///
/// With this executor preference (and `nonisolated(nonsending)` applications), a request is
/// decoded, answered and encoded on one thread without a single hop: that is how a Swift
/// server gets near libfcgi's per-request cost. An application that computes for long should
/// move that work elsewhere, as in any NIO handler.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
