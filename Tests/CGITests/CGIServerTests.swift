import CGI
import Foundation
import Gateway
import GatewayTestHarness
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `CGIServer.run` in this process, with files and pipes for its descriptors.
@Suite("CGIServer")
struct CGIServerTests {
    /// A temporary file holding `contents`, opened for reading and writing.
    func temporaryFile(_ contents: [UInt8] = []) throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/cgi-test-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        unlink(template)
        _ = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        lseek(fd, 0, SEEK_SET)
        return fd
    }

    func contents(of fd: Int32) -> [UInt8] {
        lseek(fd, 0, SEEK_SET)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return bytes }
            bytes += buffer[0..<count]
        }
    }

    let echo = ClosureApplication { environ in
        GatewayResponse(
            headers: [.contentType: "application/octet-stream"],
            body: GatewayResponseBody { writer in
                for try await chunk in environ.input {
                    #expect(chunk.count <= 65536)
                    try await writer.write(chunk)
                }
            }
        )
    }

    @Test func readsTheBodyInBoundedChunksAndStreamsTheResponse() async throws {
        let body = (0..<2_500_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let input = try temporaryFile(body + Array("trailing garbage".utf8))
        let output = try temporaryFile()
        let error = try temporaryFile()
        defer { [input, output, error].forEach { close($0) } }
        let variables = CGIVariables([("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", String(body.count))])
        let status = await CGIServer.run(echo, variables: variables, input: input, output: output, error: error)
        #expect(status == 0)
        let response = try ResponseParser.parseCGI(contents(of: output))
        let same = response.body == body  // not inside #expect, which would diff large arrays
        #expect(same)
        #expect(response[header: "Content-Length"] == nil)
        #expect(contents(of: error).isEmpty)
    }

    @Test func environIsMarkedAsCGI() async throws {
        let output = try temporaryFile()
        defer { close(output) }
        let app = ClosureApplication { environ in
            #expect(environ.runOnce)
            #expect(environ.multiprocess)
            #expect(!environ.multithread)
            #expect(environ.variables.map(\.name) == ["B", "A", "CONTENT_LENGTH"])
            let body = try await environ.input.collect(upTo: 10)
            #expect(body.isEmpty)
            return .text("ok")
        }
        let variables = CGIVariables([("B", "1"), ("A", "2"), ("CONTENT_LENGTH", "")])
        #expect(await CGIServer.run(app, variables: variables, input: -1, output: output, error: 2) == 0)
        #expect(try ResponseParser.parseCGI(contents(of: output)).text == "ok")
    }

    @Test func aClosedStandardOutputIsAFailure() async throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        close(fds[0])
        let error = try temporaryFile()
        defer {
            close(fds[1])
            close(error)
        }
        let status = await CGIServer.run(
            ClosureApplication { _ in .text("nobody reads this") },
            variables: CGIVariables([("REQUEST_METHOD", "GET")]),
            input: -1,
            output: fds[1],
            error: error
        )
        #expect(status == 1)
        let log = String(decoding: contents(of: error), as: UTF8.self)
        #expect(log.contains("could not write the response to standard output"))
        #expect(log.contains("errno \(EPIPE)"))
    }

    @Test func failingAfterTheHeadExitsNonZero() async throws {
        let output = try temporaryFile()
        let error = try temporaryFile()
        defer { [output, error].forEach { close($0) } }
        struct Broken: Error {}
        let app = ClosureApplication { _ in
            GatewayResponse(
                headers: [.contentType: "text/plain"],
                body: GatewayResponseBody { writer in
                    try await writer.write("half")
                    throw Broken()
                }
            )
        }
        let status = await CGIServer.run(app, variables: CGIVariables([]), input: -1, output: output, error: error)
        #expect(status == 1)
        #expect(try ResponseParser.parseCGI(contents(of: output)).text == "half")
        #expect(String(decoding: contents(of: error), as: UTF8.self).contains("after the response began"))
    }

    @Test func usageNamesBothWaysToRun() {
        let usage = CGIServer.usage(programName: "app")
        #expect(usage.contains("mod_cgid"))
        #expect(usage.contains("fcgiwrap"))
        #expect(usage.contains("spawn-fcgi"))
        #expect(usage.hasSuffix("\n"))
    }
}
