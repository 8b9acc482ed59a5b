import CGI
import Foundation
import Gateway
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A CGI body that ends early throws the one body error every transport throws, and the
/// application's logger is the server's with the request's metadata.
@Suite("CGIServer: body errors and the request logger")
struct CGIBodyErrorTests {
    /// A file holding `contents`, unlinked, positioned at its start.
    func temporaryFile(_ contents: [UInt8] = []) throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/cgi-test-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        unlink(template)
        _ = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        lseek(fd, 0, SEEK_SET)
        return fd
    }

    @Test func standardInputEndingEarlyIsRequestBodyIncomplete() async throws {
        let seen = Mutex<RequestBodyIncomplete?>(nil)
        let application = ClosureApplication { environ in
            do {
                _ = try await environ.input.collect(upTo: 1 << 20)
            } catch let error as RequestBodyIncomplete {
                seen.withLock { $0 = error }
                throw error
            }
            return .text("whole")
        }
        let input = try temporaryFile([1, 2, 3])
        let output = try temporaryFile()
        let error = try temporaryFile()
        defer { [input, output, error].forEach { close($0) } }
        let variables = CGIVariables([("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "10")])
        let status = await CGIServer.run(application, variables: variables, input: input, output: output, error: error)
        #expect(status == 0)  // a 500 was sent
        let thrown = try #require(seen.withLock { $0 })
        #expect(thrown.reason == .endOfInput)
        #expect(thrown.received == 3)
        #expect(thrown.expected == 10)
    }

    @Test func theApplicationsLoggerIsTheServersWithTheRequestsMetadata() async throws {
        let lines = Mutex<[Logger.Metadata]>([])
        let handler = RecordingHandler { metadata in lines.withLock { $0.append(metadata) } }
        let application = ClosureApplication { environ in
            environ.logger.info("hello")
            return .text("ok")
        }
        let output = try temporaryFile()
        defer { close(output) }
        let variables = CGIVariables([
            ("REQUEST_METHOD", "GET"), ("PATH_INFO", "/p"), ("HTTP_X_REQUEST_ID", "cgi-7"),
        ])
        let status = await CGIServer.run(
            application,
            variables: variables,
            input: -1,
            output: output,
            logger: Logger(label: "cgi") { _ in handler }
        )
        #expect(status == 0)
        let metadata = try #require(lines.withLock { $0.first })
        #expect(metadata["request-id"]?.description == "cgi-7")
        #expect(metadata["method"]?.description == "GET")
        #expect(metadata["path"]?.description == "/p")
    }
}

/// A log handler that hands each line's metadata to `record`.
struct RecordingHandler: LogHandler {
    let record: @Sendable (Logger.Metadata) -> Void
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        record(metadata.merging(event.metadata ?? [:]) { $1 })
    }
}
