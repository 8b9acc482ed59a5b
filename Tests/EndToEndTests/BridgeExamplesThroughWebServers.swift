#if Hummingbird || OpenAPI || Vapor
import Foundation
import GatewayTestHarness
import Testing

/// The framework bridges' examples, built with their package traits on
/// (`swift build --traits Hummingbird,OpenAPI,Vapor`); each answers the same four routes.
enum BridgeExample: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case hummingbird = "hummingbird-example"
    case openAPI = "openapi-example"
    case vapor = "vapor-example"

    var testDescription: String { rawValue }

    /// The examples whose trait this build has on.
    static var built: [BridgeExample] {
        var examples: [BridgeExample] = []
        #if Hummingbird
        examples.append(.hummingbird)
        #endif
        #if OpenAPI
        examples.append(.openAPI)
        #endif
        #if Vapor
        examples.append(.vapor)
        #endif
        return examples
    }

    /// Every built example behind every FastCGI deployment.
    static var deployments: [(BridgeExample, FastCGIDeployment)] {
        built.flatMap { example in FastCGIDeployment.allCases.map { (example, $0) } }
    }
}

/// Each bridge's example behind real nginx (plain and `fastcgi_keep_conn on`) and Apache
/// mod_proxy_fcgi, started from `--socket` and from spawn-fcgi, and as CGI under Apache mod_cgid.
@Suite("Framework bridges through web servers", .serialized, .timeLimit(.minutes(10)))
struct BridgeExamplesThroughWebServers {
    /// The four routes, checked through the web server at `port`.
    static func checkRoutes(port: Int, mountPoint: String = "") async throws {
        let hello = try await send(port: port, "GET", mountPoint + "/hello")
        #expect(hello.status == 200)
        #expect(hello.text == "Hello, world!")
        #expect(hello[header: "Content-Type"]?.hasPrefix("text/plain") == true, "\(hello.headers)")

        let sent = Array("echo me: \u{00e9}\r\n\u{0}end".utf8)
        let echo = try await send(
            port: port,
            "POST",
            mountPoint + "/echo",
            headers: [("Content-Type", "application/octet-stream")],
            body: sent
        )
        #expect(echo.status == 200)
        #expect(echo.body == sent)

        let user = try await send(port: port, "GET", mountPoint + "/users/42")
        #expect(user.status == 200)
        #expect(user[header: "Content-Type"]?.hasPrefix("application/json") == true, "\(user.headers)")
        let object = try JSONSerialization.jsonObject(with: Data(user.body)) as? [String: String]
        #expect(object == ["id": "42"], "\(user.text)")

        let stream = try await send(port: port, "GET", mountPoint + "/stream?n=5")
        #expect(stream.status == 200)
        #expect(stream.text == (0..<5).map { "line \($0)\n" }.joined())

        let missing = try await send(port: port, "GET", mountPoint + "/no-such-route")
        #expect(missing.status == 404)
    }

    @Test("every route answers", arguments: BridgeExample.deployments)
    func routes(_ example: BridgeExample, _ deployment: FastCGIDeployment) async throws {
        try await FastCGISetup.with(deployment, program: example.rawValue) { setup in
            try await Self.checkRoutes(port: setup.port)
            let signs = crashSigns(in: setup.app.log)
            #expect(signs.isEmpty, "the app's log shows \(signs)")
        }
    }

    @Test("every route answers when spawn-fcgi hands the socket on fd 0", arguments: BridgeExample.built)
    func routesFromSpawnFCGI(_ example: BridgeExample) async throws {
        try await FastCGISetup.with(.nginxKeepAlive, program: example.rawValue, launch: .spawnFCGI) { setup in
            try await Self.checkRoutes(port: setup.port)
        }
    }

    @Test("lines stream one at a time", arguments: BridgeExample.built)
    func linesStream(_ example: BridgeExample) async throws {
        try await FastCGISetup.with(.nginx, program: example.rawValue) { setup in
            let port = setup.port
            // 4 lines, 400 ms apart: the last is written 1.2 s or more after the first.
            let arrivals = try await onDedicatedThread {
                let connection = try HTTPStreamConnection(port: port)
                defer { connection.close() }
                var arrivals: [Double] = []
                var text: [UInt8] = []
                let start = ContinuousClock.now
                try connection.exchange(
                    method: "GET",
                    target: "/stream?n=4&delay_ms=400",
                    deadline: .now + .seconds(30),
                    onBody: { bytes in
                        arrivals.append(seconds(since: start))
                        text.append(contentsOf: bytes)
                        return true
                    }
                )
                return (arrivals, String(decoding: text, as: UTF8.self))
            }
            #expect(arrivals.1 == "line 0\nline 1\nline 2\nline 3\n")
            let first = arrivals.0.first ?? .infinity
            let last = arrivals.0.last ?? 0
            #expect(arrivals.0.count >= 3, "the lines arrived in \(arrivals.0.count) pieces: buffered")
            #expect(last - first >= 0.8, "the lines arrived together (\(first) s … \(last) s)")
        }
    }

    /// Runs `exchange` against the app while sampling its resident memory every 50 ms; returns
    /// the exchange's result, the resident size before it, and the highest seen during it.
    static func sampleMemory<T: Sendable>(
        of app: FastCGIAppProcess,
        during exchange: @escaping @Sendable () throws -> T
    ) async throws -> (result: T, before: Int, highest: Int) {
        let before = app.memory?.resident ?? 0
        let sampler = Task {
            var highest = 0
            while !Task.isCancelled {
                if let memory = app.memory { highest = max(highest, memory.resident) }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return highest
        }
        let result: T
        do {
            result = try await onDedicatedThread(exchange)
        } catch {
            sampler.cancel()
            throw error
        }
        sampler.cancel()
        return (result, before, await sampler.value)
    }

    /// Growth of the app's resident memory that still counts as flat for a 64 MiB body: a body
    /// held whole once would add 64 MiB.
    static let flatGrowth = 24 << 20

    @Test("a 64 MiB upload is read as it arrives, with the app's memory flat", arguments: BridgeExample.deployments)
    func largeUpload(_ example: BridgeExample, _ deployment: FastCGIDeployment) async throws {
        let size = 64 << 20
        try await FastCGISetup.with(deployment, program: example.rawValue) { setup in
            let port = setup.port
            // Warm up (lazy allocations, the first request's code paths) before the baseline.
            _ = try await send(port: port, "POST", "/count", body: Array(repeating: 0x61, count: 1 << 20))
            let started = ContinuousClock.now
            let (answer, before, highest) = try await Self.sampleMemory(of: setup.app) {
                let connection = try HTTPStreamConnection(port: port)
                defer { connection.close() }
                var status = 0
                var body: [UInt8] = []
                try connection.exchange(
                    method: "POST",
                    target: "/count",
                    headers: [("Content-Type", "application/octet-stream")],
                    bodyLength: size,
                    body: { offset, count in PatternBody.bytes(at: offset, count: count) },
                    deadline: .now + .seconds(180),
                    onHead: { status = $0.status },
                    onBody: { bytes in
                        body.append(contentsOf: bytes)
                        return true
                    }
                )
                return (status, String(decoding: body, as: UTF8.self))
            }
            reportFigure(
                "\(example.rawValue) via \(deployment.testDescription): 64 MiB upload in "
                    + "\(String(format: "%.1f", seconds(since: started))) s; VmRSS \(before >> 20) MiB before, "
                    + "max \(highest >> 20) MiB during"
            )
            #expect(answer.0 == 200)
            #expect(answer.1 == "\(size)")
            #expect(before > 0, "could not read the app's memory from /proc")
            if example != .vapor {  // Vapor 4 reads a request body whole before routing it.
                #expect(highest - before < Self.flatGrowth, "VmRSS grew from \(before >> 20) to \(highest >> 20) MiB")
            }
        }
    }

    @Test("a 64 MiB download streams with the app's memory flat", arguments: BridgeExample.deployments)
    func largeDownload(_ example: BridgeExample, _ deployment: FastCGIDeployment) async throws {
        let lines = 1024
        let lineSize = 64 << 10
        try await FastCGISetup.with(deployment, program: example.rawValue) { setup in
            let port = setup.port
            _ = try await send(port: port, "GET", "/stream?n=16&size=65536")
            let started = ContinuousClock.now
            let (download, before, highest) = try await Self.sampleMemory(of: setup.app) {
                let connection = try HTTPStreamConnection(port: port)
                defer { connection.close() }
                var status = 0
                var received = 0
                var newlines = 0
                try connection.exchange(
                    method: "GET",
                    target: "/stream?n=\(lines)&size=\(lineSize)",
                    deadline: .now + .seconds(180),
                    onHead: { status = $0.status },
                    onBody: { bytes in
                        received += bytes.count
                        newlines += bytes.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
                        return true
                    }
                )
                return (status, received, newlines)
            }
            reportFigure(
                "\(example.rawValue) via \(deployment.testDescription): 64 MiB download in "
                    + "\(String(format: "%.1f", seconds(since: started))) s; VmRSS \(before >> 20) MiB before, "
                    + "max \(highest >> 20) MiB during"
            )
            #expect(download.0 == 200)
            #expect(download.1 == lines * lineSize)
            #expect(download.2 == lines)
            #expect(before > 0, "could not read the app's memory from /proc")
            #expect(highest - before < Self.flatGrowth, "VmRSS grew from \(before >> 20) to \(highest >> 20) MiB")
        }
    }

    /// nginx stops sending a request body to a FastCGI app once the app's response has begun
    /// (seen: a streaming echo of 64 MiB stalls after ~400 KiB), so a body echoed as it arrives
    /// is tested through Apache, which keeps both directions going.
    @Test("a 64 MiB upload is echoed as it arrives through Apache", arguments: BridgeExample.built)
    func largeEchoThroughApache(_ example: BridgeExample) async throws {
        let size = 64 << 20
        try await FastCGISetup.with(.apache, program: example.rawValue) { setup in
            let port = setup.port
            _ = try await send(port: port, "POST", "/echo", body: Array(repeating: 0x61, count: 1 << 20))
            let started = ContinuousClock.now
            let (echo, before, highest) = try await Self.sampleMemory(of: setup.app) {
                let connection = try HTTPStreamConnection(port: port)
                defer { connection.close() }
                var status = 0
                var received = 0
                var mismatchAt: Int?
                try connection.exchange(
                    method: "POST",
                    target: "/echo",
                    headers: [("Content-Type", "application/octet-stream")],
                    bodyLength: size,
                    body: { offset, count in PatternBody.bytes(at: offset, count: count) },
                    deadline: .now + .seconds(180),
                    onHead: { status = $0.status },
                    onBody: { bytes in
                        if mismatchAt == nil, !PatternBody.matches(bytes, at: received) { mismatchAt = received }
                        received += bytes.count
                        return true
                    }
                )
                return (status, received, mismatchAt)
            }
            reportFigure(
                "\(example.rawValue) via Apache: 64 MiB echo in \(String(format: "%.1f", seconds(since: started))) s; "
                    + "VmRSS \(before >> 20) MiB before, max \(highest >> 20) MiB during"
            )
            #expect(echo.0 == 200)
            #expect(echo.1 == size)
            #expect(echo.2 == nil, "the echo differs from what was sent at byte \(echo.2 ?? -1)")
            if example != .vapor {  // Vapor 4 reads a request body whole before routing it.
                #expect(highest - before < Self.flatGrowth, "VmRSS grew from \(before >> 20) to \(highest >> 20) MiB")
            }
        }
    }

    @Test("a client hanging up mid-stream stops the handler", arguments: BridgeExample.deployments)
    func clientDisconnectCancelsHandler(_ example: BridgeExample, _ deployment: FastCGIDeployment) async throws {
        let lines = 10_000_000
        try await FastCGISetup.with(deployment, program: example.rawValue) { setup in
            let port = setup.port
            let read = try await onDedicatedThread {
                let connection = try HTTPStreamConnection(port: port)
                var received = 0
                try connection.exchange(
                    method: "GET",
                    target: "/stream?n=\(lines)",
                    deadline: .now + .seconds(60),
                    onBody: { bytes in
                        received += bytes.count
                        return received < 256 << 10
                    }
                )
                connection.close()
                return received
            }
            #expect(read >= 256 << 10, "only \(read) bytes before hanging up")
            // The handler says how far it got when it stops; 10 M lines take minutes to send.
            let deadline = ContinuousClock.now + .seconds(20)
            var stopped: String?
            while ContinuousClock.now < deadline {
                stopped = setup.app.log.split(separator: "\n").first { $0.contains("stream stopped after") }.map(
                    String.init
                )
                if stopped != nil { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let line = try #require(stopped, "the handler did not stop:\n\(setup.app.logTail)")
            let written = line.split(separator: " ").drop { $0 != "after" }.dropFirst().first.flatMap { Int($0) }
            #expect(written.map { $0 < lines } == true, "\(line)")
            let hello = try await send(port: port, "GET", "/hello")
            #expect(hello.text == "Hello, world!")
            #expect(setup.app.isRunning, "the app died")
            let signs = crashSigns(in: setup.app.log)
            #expect(signs.isEmpty, "the app's log shows \(signs)")
        }
    }

    @Test("one CGI request through Apache mod_cgid", arguments: BridgeExample.built)
    func cgiThroughApache(_ example: BridgeExample) async throws {
        let program = try BuiltProducts.executable(named: example.rawValue)
        try await WebServerInstance.with({ try await ApacheCGI.start(programs: [program]) }) { apache in
            let hello = try await send(port: apache.port, "GET", "/cgi-bin/\(example.rawValue)/hello")
            #expect(hello.status == 200, "\(hello.text)\n\(apache.errorLog.suffix(2048))")
            #expect(hello.text == "Hello, world!")
            let user = try await send(port: apache.port, "GET", "/cgi-bin/\(example.rawValue)/users/7")
            #expect(user.text == #"{"id":"7"}"#)
        }
    }
}
#endif
