import Gateway
import NIOCore

/// A request's `ResponseOutput`: CGI response bytes become an HTTP response on its connection.
struct HTTPResponseOutput<App: GatewayApplication>: ResponseOutput {
    let connection: NIOLoopBound<HTTPConnectionHandler<App>>
    let exchange: NIOLoopBound<HTTPExchange>

    nonisolated(nonsending) mutating func send(head: [UInt8], body: [UInt8], isLast: Bool) async throws {
        let connection = self.connection
        let exchange = self.exchange
        guard connection.eventLoop.inEventLoop else {
            // Only reached when an application moved its writer off the request's executor.
            try await connection.eventLoop.submit {
                try connection.value.write(head: head, body: body, isLast: isLast, exchange: exchange.value)
            }.get()
            return
        }
        try connection.value.write(head: head, body: body, isLast: isLast, exchange: exchange.value)
        if !isLast, !connection.value.isWritable {
            try await connection.value.waitUntilWritable()
        }
    }
}
