#if Hummingbird
import Gateway
import GatewayHummingbird
import GatewayTestHarness
import Hummingbird
import NIOCore
import Testing

@Suite("GatewayHummingbird in process")
struct HummingbirdBridgeTests {
    struct Tagging<Context: RequestContext>: RouterMiddleware {
        func handle(
            _ request: Request,
            context: Context,
            next: (Request, Context) async throws -> Response
        )
            async throws -> Response
        {
            var response = try await next(request, context)
            response.headers[.init("X-Tagged")!] = "yes"
            return response
        }
    }

    enum Failure: Error { case requested }

    static func app(
        scriptName: String = ""
    ) -> InProcessTransport<GatewayHummingbird<RouterResponder<BasicRequestContext>>> {
        let router = Router()
        router.add(middleware: Tagging())
        router.get("users/:id") { request, context in
            // context.id reads hb.request.id, which Hummingbird force-unwraps.
            "\(try context.parameters.require("id")) \(request.uri.path) \(context.id.isEmpty ? "-" : "id")"
        }
        router.post("count") { request, _ in
            var count = 0
            for try await buffer in request.body { count += buffer.readableBytes }
            return "\(count)"
        }
        router.get("teapot") { _, _ -> String in throw HTTPError(.init(code: 418)) }
        router.get("fail") { _, _ -> String in throw Failure.requested }
        return InProcessTransport(GatewayHummingbird(router), environment: CGIEnvironment(scriptName: scriptName))
    }

    @Test func routeParametersMiddlewareAndRequestID() async throws {
        let response = try await Self.app().perform(TestRequest("GET", "/users/42"))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "42 /users/42 id")
        #expect(response.headers.contains { $0.name == "X-Tagged" && $0.value == "yes" })
    }

    @Test func mountPointIsTakenOffThePath() async throws {
        let response = try await Self.app(scriptName: "/cgi-bin/app").perform(TestRequest("GET", "/users/7"))
        #expect(String(decoding: response.body, as: UTF8.self) == "7 /users/7 id")
    }

    /// An app's own context that keeps the channel, as apps that want the client's address do.
    struct PeerContext: RequestContext {
        var coreContext: CoreRequestContextStorage
        let channel: any Channel

        init(source: ApplicationRequestContextSource) {
            self.coreContext = CoreRequestContextStorage(source: source)
            self.channel = source.channel
        }
    }

    @Test func remoteAddressReachesTheChannel() async throws {
        let router = Router(context: PeerContext.self)
        router.get("peer") { _, context in
            "\(context.channel.remoteAddress?.ipAddress ?? "none"):\(context.channel.remoteAddress?.port ?? 0)"
        }
        let response = try await InProcessTransport(GatewayHummingbird(router)).perform(TestRequest("GET", "/peer"))
        #expect(String(decoding: response.body, as: UTF8.self) == "127.0.0.1:41952")
    }

    @Test func requestBodyStreamsIn() async throws {
        let response = try await Self.app().perform(
            TestRequest("POST", "/count", body: Array(repeating: 1, count: 300_000))
        )
        #expect(String(decoding: response.body, as: UTF8.self) == "300000")
    }

    @Test func httpErrorsKeepTheirStatusAndOtherErrorsAre500() async throws {
        #expect(try await Self.app().perform(TestRequest("GET", "/teapot")).status == 418)
        #expect(try await Self.app().perform(TestRequest("GET", "/nothing")).status == 404)
        #expect(try await Self.app().perform(TestRequest("GET", "/fail")).status == 500)
    }

    @Test func gatewayRequestContextSeesTheEnviron() async throws {
        let router = Router(context: GatewayRequestContext.self)
        router.get("who") { _, context in "\(context.environ["SERVER_NAME"] ?? "") \(context.remoteAddress?.port ?? 0)"
        }
        let response = try await InProcessTransport(GatewayHummingbird(router)).perform(TestRequest("GET", "/who"))
        #expect(String(decoding: response.body, as: UTF8.self) == "localhost 41952")
    }
}
#endif
