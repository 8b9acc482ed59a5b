import Gateway
import NIOCore

/// A request's `ResponseOutput`: response bytes become `FCGI_STDOUT` records on its connection.
struct FastCGIResponseOutput: ResponseOutput {
    let connection: NIOLoopBound<ConnectionHandler>
    let id: UInt16
    let serial: UInt64

    nonisolated(nonsending) mutating func send(head: [UInt8], body: [UInt8], isLast: Bool) async throws {
        let connection = self.connection
        let (id, serial) = (self.id, self.serial)
        guard connection.eventLoop.inEventLoop else {
            // Only reached when an application moved its writer off the request's executor.
            try await connection.eventLoop.flatSubmit {
                do {
                    try connection.value.writeStdout(head, body, id: id, serial: serial, flush: true)
                    return connection.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return connection.eventLoop.makeFailedFuture(error)
                }
            }.get()
            return
        }
        try connection.value.writeStdout(head, body, id: id, serial: serial, flush: !isLast)
        if !isLast, !connection.value.isWritable {
            try await connection.value.waitUntilWritable(id: id, serial: serial)
        }
    }
}
