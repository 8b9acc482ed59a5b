import ArgumentParser
import Logging
import ServiceLifecycle
import SwiftGateway

struct Greeter: GatewayApplication {
    let greeting: String

    func respond(to environ: Environ) async throws -> GatewayResponse {
        switch environ.pathInfo {
        case "/":
            environ.logger.info("greeting")  // carries request-id, method and path
            return .text("\(greeting) from \(environ.request.authority ?? "swift-gateway")!")
        case "/echo":
            let body = try await environ.input.collect(upTo: 1 << 20)
            let headers: HTTPFields = [.contentType: environ.contentType ?? "application/octet-stream"]
            return GatewayResponse(headers: headers, body: GatewayResponseBody(bytes: body))
        default:
            return .status(.notFound)
        }
    }
}

/// A second service beside the server, stopped by the same graceful shutdown.
struct Heartbeat: Service {
    let logger: Logger

    func run() async {
        logger.info("heartbeat started")
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .seconds(60))
                logger.info("still serving")
            }
        }
        logger.info("heartbeat stopped")
    }
}

struct GreeterCommand: AsyncParsableCommand {
    @Option(help: "How to greet.") var greeting = "Hello"
    @OptionGroup var gateway: GatewayOptions

    /// Parses the flags (none for a CGI request: its arguments come from its query string).
    static func start() async { await main(GatewayOptions.commandLineArguments) }

    func run() async throws {
        let level = gateway.logLevel
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        let logger = Logger(label: "greeter")
        let server = GatewayServer(Greeter(greeting: greeting), options: gateway, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    // A CGI request ends the server after one response: that ends the group too.
                    .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup),
                    .init(service: Heartbeat(logger: logger)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

await GreeterCommand.start()
