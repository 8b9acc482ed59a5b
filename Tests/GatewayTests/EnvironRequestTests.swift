import Gateway
import HTTPTypes
import Logging
import Synchronization
import Testing

@Suite("Environ: the HTTPRequest, the request id and the logger")
struct EnvironRequestTests {
    /// What nginx's `fastcgi_params` sends for `GET /app/a%20b?x=1` behind
    /// `fastcgi_split_path_info`, with the empty CONTENT_TYPE and CONTENT_LENGTH it always sends.
    static let nginx: KeyValuePairs<String, String> = [
        "QUERY_STRING": "x=1", "REQUEST_METHOD": "GET", "CONTENT_TYPE": "", "CONTENT_LENGTH": "",
        "SCRIPT_NAME": "/app", "REQUEST_URI": "/app/a%20b?x=1", "DOCUMENT_URI": "/app/a b",
        "DOCUMENT_ROOT": "/srv", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "https", "HTTPS": "on",
        "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "nginx/1.26", "REMOTE_ADDR": "10.0.0.9",
        "REMOTE_PORT": "50000", "SERVER_ADDR": "10.0.0.1", "SERVER_PORT": "443", "SERVER_NAME": "example.org",
        "PATH_INFO": "/a b", "HTTP_HOST": "example.org", "HTTP_ACCEPT": "text/html",
        "HTTP_X_REQUEST_ID": "0123456789abcdef0123456789abcdef",
    ]

    @Test func typicalNginxParamsMakeTheRequestAClientSent() {
        let request = environ(Self.nginx).request
        var fields = HTTPFields()
        fields[.accept] = "text/html"
        fields[HTTPField.Name("x-request-id")!] = "0123456789abcdef0123456789abcdef"
        let expected = HTTPRequest(
            method: .get,
            scheme: "https",
            authority: "example.org",
            path: "/app/a%20b?x=1",
            headerFields: fields
        )
        #expect(request == expected)
        // Empty CONTENT_TYPE and CONTENT_LENGTH mean absent: no such fields.
        #expect(request.headerFields[.contentType] == nil)
        #expect(request.headerFields[.contentLength] == nil)
    }

    @Test func aBodyKeepsItsContentHeaders() {
        let request = environ([
            "REQUEST_METHOD": "POST", "REQUEST_URI": "/upload", "SERVER_NAME": "localhost", "SERVER_PORT": "8080",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2",
        ]).request
        #expect(request.method == .post)
        #expect(request.scheme == "http")
        #expect(request.authority == "localhost:8080")
        #expect(request.path == "/upload")
        #expect(request.headerFields[.contentType] == "application/json")
        #expect(request.headerFields[.contentLength] == "2")
    }

    @Test func withoutRequestURIThePathIsRebuiltFromTheSmoothedViews() {
        // SCRIPT_NAME `/` with a PATH_INFO lacking its slash; a decoded space re-encoded.
        let slash = environ(["SCRIPT_NAME": "/", "PATH_INFO": "a b", "QUERY_STRING": "q=%20", "SERVER_NAME": "h"])
        #expect(slash.request.path == "/a%20b?q=%20")
        #expect(slash.request.authority == "h")
        // No PATH_INFO and no REQUEST_URI: the script's path; `?` and `%` in it stay data.
        let missing = environ(["SCRIPT_NAME": "/cgi-bin/x?%"])
        #expect(missing.request.path == "/cgi-bin/x%3F%25")
        #expect(environ([:]).request.path == "/")
        #expect(environ([:]).request.authority == nil)
        // An absolute-form target keeps only its path and query.
        #expect(environ(["REQUEST_URI": "http://h:81/p?q"]).request.path == "/p?q")
    }

    @Test func aMethodThatIsNoTokenIsNeitherATrapNorGET() {
        let bad = environ(["REQUEST_METHOD": "BAD METHOD\r\n"])
        #expect(bad.request.method == Environ.invalidMethod)
        #expect(bad.request.method != .get)
        #expect(bad.requestMethod == "BAD METHOD\r\n")
    }

    @Test func requestIDIsTheWebServersWhenSaneElseGenerated() {
        #expect(environ(Self.nginx).requestID.description == "0123456789abcdef0123456789abcdef")
        #expect(environ(Self.nginx).requestID.wasReceived)
        for insane in ["", "has space", "quote\"", String(repeating: "a", count: 129), "new\nline"] {
            let id = environ(["HTTP_X_REQUEST_ID": insane]).requestID
            #expect(!id.wasReceived, "\(insane)")
            #expect(id.description.utf8.count == 16 && id.description.allSatisfy(\.isHexDigit))
        }
        let first = environ([:]).requestID
        let second = environ([:]).requestID
        #expect(first != second)
    }

    @Test func loggerCarriesTheRequestsMetadataOnTheServersHandler() {
        let captured = Mutex<[Logger.Metadata]>([])
        let handler = MetadataRecorder { metadata in captured.withLock { $0.append(metadata) } }
        let environ = Environ(
            variables: CGIVariables([("REQUEST_METHOD", "POST"), ("PATH_INFO", "/x"), ("HTTP_X_REQUEST_ID", "r-1")]),
            logger: Logger(label: "server") { _ in handler },
            multithread: true,
            multiprocess: false,
            runOnce: false
        )
        environ.logger.info("one")
        var withMore = environ
        var logger = withMore.logger
        logger[metadataKey: "user"] = "alice"
        withMore.logger = logger
        withMore.logger.info("two")
        let lines = captured.withLock { $0 }
        #expect(lines.count == 2)
        #expect(lines.first?["request-id"]?.description == "r-1")
        #expect(lines.first?["method"]?.description == "POST")
        #expect(lines.first?["path"]?.description == "/x")
        #expect(lines.last?["user"]?.description == "alice")
        #expect(lines.last?["request-id"]?.description == "r-1")
    }

    /// A decoded path with a newline must not forge a line in a line-oriented log.
    @Test func controlCharactersInThePathAreEscapedInTheLogMetadata() {
        let captured = Mutex<[Logger.Metadata]>([])
        let handler = MetadataRecorder { metadata in captured.withLock { $0.append(metadata) } }
        let environ = Environ(
            variables: CGIVariables([("REQUEST_METHOD", "GET"), ("PATH_INFO", "/a\nfake line\u{7F}")]),
            logger: Logger(label: "server") { _ in handler },
            multithread: true,
            multiprocess: false,
            runOnce: false
        )
        environ.logger.info("one")
        #expect(captured.withLock { $0.first?["path"]?.description } == "/a%0Afake line%7F")
        #expect(environ.pathInfo == "/a\nfake line\u{7F}", "the environ itself keeps the path as sent")
    }

    @Test func bodyEndingEarlyIsOneErrorWithItsCounts() async throws {
        let body = GatewayRequestBody(source: ChunkSource([[1, 2, 3]]), contentLength: 10)
        #expect(body.declaredLength == 10)
        do {
            _ = try await body.collect(upTo: 100)
            Issue.record("a short body was taken for a whole one")
        } catch let error as RequestBodyIncomplete {
            #expect(error.reason == .endOfInput)
            #expect(error.received == 3)
            #expect(error.expected == 10)
        }
        // A server's error without counts gets this body's.
        let aborted = GatewayRequestBody(source: FailingSource(after: [7, 7]), contentLength: nil)
        do {
            _ = try await aborted.collect(upTo: 100)
            Issue.record("an aborted body was taken for a whole one")
        } catch let error as RequestBodyIncomplete {
            #expect(error.reason == .aborted)
            #expect(error.received == 2)
            #expect(error.expected == nil)
        }
    }
}

/// Hands its chunk out, then fails as a server fails a body its web server aborted.
final class FailingSource: RequestBodySource, @unchecked Sendable {
    private var chunk: [UInt8]?
    init(after chunk: [UInt8]) { self.chunk = chunk }

    nonisolated(nonsending) func read() async throws -> [UInt8]? {
        if let chunk {
            self.chunk = nil
            return chunk
        }
        throw RequestBodyIncomplete(reason: .aborted)
    }
}

/// A log handler that hands each line's metadata to `record`.
struct MetadataRecorder: LogHandler {
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
