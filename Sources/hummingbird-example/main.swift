#if canImport(Glibc)
import Glibc
#endif

#if Hummingbird
import GatewayHummingbird
import Hummingbird
import Logging
import NIOPosix
import SwiftGateway

/// A Hummingbird 2 app served through the gateway: the router is the app's own, unchanged;
/// only the last line differs from `Application(router: router).runService()`.
///
/// Runs as CGI, as a FastCGI server (`--socket`, `--port`), or on a socket from spawn-fcgi.
let router = Router()

router.get("hello") { _, _ in
    "Hello, world!"
}

// The request body streams back as it arrives, buffer by buffer.
router.post("echo") { request, _ in
    Response(
        status: .ok,
        headers: [.contentType: "application/octet-stream"],
        body: ResponseBody(asyncSequence: request.body)
    )
}

// Reads the body as it arrives and answers its length: an upload that is never held whole.
router.post("count") { request, _ in
    var count = 0
    for try await buffer in request.body { count += buffer.readableBytes }
    return "\(count)"
}

struct User: ResponseEncodable {
    let id: String
}

router.get("users/:id") { _, context in
    User(id: try context.parameters.require("id"))
}

/// At most this many lines per `/stream` request, and bytes per line: the client chooses both.
let maximumLines = 10_000_000
let maximumLineBytes = 1 << 20

// N lines, each written (and so sent on) before the next is made; `delay_ms` between them;
// `size` pads each line with `x` to that many bytes (a large download without a large buffer).
router.get("stream") { request, context in
    guard let n = request.uri.queryParameters.get("n", as: Int.self), (0...maximumLines).contains(n) else {
        throw HTTPError(.badRequest, message: "n must be 0…\(maximumLines)")
    }
    let delay = request.uri.queryParameters.get("delay_ms", as: Int.self).map { min(max($0, 0), 10_000) } ?? 0
    let size = request.uri.queryParameters.get("size", as: Int.self).map { min(max($0, 0), maximumLineBytes) } ?? 0
    let logger = context.logger
    return Response(
        status: .ok,
        headers: [.contentType: "text/plain; charset=utf-8"],
        body: ResponseBody { writer in
            var written = 0
            do {
                for line in 0..<n {
                    if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                    try await writer.write(ByteBuffer(string: paddedLine(line, size: size)))
                    written += 1
                }
                try await writer.finish(nil)
            } catch {
                logger.info("stream stopped after \(written) of \(n) lines: \(error)")
                throw error
            }
        }
    )
}

/// `line N` and a newline, padded with `x` before the newline to `size` bytes when it is shorter.
func paddedLine(_ number: Int, size: Int) -> String {
    let text = "line \(number)"
    let padding = size - text.utf8.count - 1
    return padding > 0 ? text + String(repeating: "x", count: padding) + "\n" : text + "\n"
}

// For scripts/bench-frameworks only: HUMMINGBIRD_OWN_SERVER=127.0.0.1:PORT runs the same router
// on Hummingbird's own HTTP server instead, to compare with it behind nginx's `proxy_pass`.
if let address = getenv("HUMMINGBIRD_OWN_SERVER") {
    await runOnOwnServer(router, address: String(cString: address))
}

await serve(GatewayHummingbird(router))

/// Serves `router` on Hummingbird's own HTTP/1.1 server at `address` (`HOST:PORT`) until
/// SIGTERM or SIGINT, then exits: the comparison scripts/bench-frameworks measures. Its logger
/// says only warnings and errors, as the gateway side runs with `--log-level warning` there,
/// and it has an event loop per CPU the process may use, as the gateway has (Hummingbird's
/// default, one per core of the machine, would put two loops on the benchmark's one CPU).
func runOnOwnServer(_ router: Router<BasicRequestContext>, address: String) async -> Never {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
        (1...65535).contains(port), colon > address.startIndex
    else {
        printError("HUMMINGBIRD_OWN_SERVER must be HOST:PORT (e.g. 127.0.0.1:8080), not '\(address)'")
        exit(64)  // EX_USAGE
    }
    var logger = Logger(label: "hummingbird-example")
    logger.logLevel = .warning
    let app = Application(
        router: router,
        configuration: .init(address: .hostname(String(address[..<colon]), port: port)),
        eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: usableCPUs())),
        logger: logger
    )
    do {
        try await app.runService()
        exit(0)
    } catch {
        printError("hummingbird-example: \(error)")
        exit(1)
    }
}

/// The CPUs in this process's affinity mask (`taskset`), from /proc/self/status; 1 where unknown.
func usableCPUs() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 1 }
    defer { fclose(file) }
    var bytes = [UInt8](repeating: 0, count: 16 * 1024)
    let read = fread(&bytes, 1, bytes.count, file)
    let status = String(decoding: bytes[..<read], as: UTF8.self)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return 1 }
    let count = line.dropFirst("Cpus_allowed:".count).compactMap(\.hexDigitValue).reduce(0) { $0 + $1.nonzeroBitCount }
    return max(1, count)
}
#else
printError("hummingbird-example was built without the Hummingbird trait: swift build --traits Hummingbird")
exit(69)  // EX_UNAVAILABLE
#endif

/// Writes `message` and a newline to standard error (fd 2; no shared `stderr` FILE).
func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
