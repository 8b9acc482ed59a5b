import Gateway
import GatewayTestHarness
import HTTPTypes
import Testing

@Suite("GatewayRequestBody")
struct RequestBodyTests {
    @Test func aBodyEndingBeforeContentLengthThrows() async throws {
        let short = GatewayRequestBody(source: ChunkSource([[1, 2], [3]]), contentLength: 10)
        await #expect(throws: RequestBodyIncomplete.self) { try await short.collect(upTo: 100) }
        var iterator = GatewayRequestBody(source: ChunkSource([[1, 2, 3]]), contentLength: 5).makeAsyncIterator()
        #expect(try await iterator.next() == [1, 2, 3])
        do {
            _ = try await iterator.next()
            Issue.record("no error for a body 2 bytes short")
        } catch let error as RequestBodyIncomplete {
            #expect(error.received == 3 && error.expected == 5)
            #expect("\(error)" == "request body incomplete: the input ended after 3 of 5 bytes")
        }
        // Without CONTENT_LENGTH the stream's end is the body's end.
        #expect(
            try await GatewayRequestBody(source: ChunkSource([[1], [2]]), contentLength: nil).collect(upTo: 10) == [
                1, 2,
            ]
        )
    }

    @Test func neverYieldsMoreThanContentLength() async throws {
        let source = ChunkSource([Array("hello".utf8), Array(" world".utf8), Array("!!!".utf8)])
        let body = GatewayRequestBody(source: source, contentLength: 7)
        var chunks: [[UInt8]] = []
        for try await chunk in body { chunks.append(chunk) }
        #expect(chunks.map(text) == ["hello", " w"])
        // It stops asking the source once CONTENT_LENGTH bytes arrived.
        #expect(source.reads == 2)
    }

    @Test func zeroContentLengthReadsNothing() async throws {
        let source = ChunkSource([Array("unexpected".utf8)])
        #expect(try await GatewayRequestBody(source: source, contentLength: 0).collect(upTo: 100) == [])
        #expect(source.reads == 0)
    }

    @Test func withoutContentLengthReadsToTheEnd() async throws {
        let body = GatewayRequestBody(source: ChunkSource([[1, 2], [3]]), contentLength: nil)
        #expect(try await body.collect(upTo: 10) == [1, 2, 3])
    }

    @Test func collectEnforcesItsLimit() async throws {
        let exact = GatewayRequestBody(source: ChunkSource([[1, 2], [3, 4]]), contentLength: 4)
        #expect(try await exact.collect(upTo: 4) == [1, 2, 3, 4])
        let over = GatewayRequestBody(source: ChunkSource([[1, 2], [3, 4]]), contentLength: 4)
        await #expect(throws: RequestBodyTooLarge.self) { try await over.collect(upTo: 3) }
        let firstChunkTooLarge = GatewayRequestBody(source: ChunkSource([[1, 2, 3, 4, 5]]), contentLength: nil)
        await #expect(throws: RequestBodyTooLarge.self) { try await firstChunkTooLarge.collect(upTo: 3) }
    }

    @Test func discardCountsAndInMemoryBodies() async throws {
        #expect(try await GatewayRequestBody(bytes: [1, 2, 3]).discard() == 3)
        #expect(try await GatewayRequestBody.empty.collect(upTo: 0) == [])
        #expect(try await GatewayRequestBody(bytes: Array(repeating: 7, count: 100)).collect(upTo: 100).count == 100)
    }
}

@Suite("ResponseHead")
struct ResponseHeadTests {
    @Test func statusLineHeadersAndBlankLine() {
        let head = ResponseHead.encode(status: .notFound, headers: [.contentType: "text/plain"], contentLength: 3)
        #expect(text(head) == "Status: 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n")
    }

    @Test func hopByHopHeadersAreStripped() {
        var headers = HTTPFields()
        headers[.connection] = "close"
        headers[.transferEncoding] = "chunked"
        headers[HTTPField.Name("Keep-Alive")!] = "timeout=5"
        headers[.upgrade] = "websocket"
        headers[.te] = "trailers"
        headers[HTTPField.Name("Trailer")!] = "X"
        headers[HTTPField.Name("Proxy-Authenticate")!] = "Basic"
        headers[HTTPField.Name("Status")!] = "201 Created"
        headers[HTTPField.Name("X-Kept")!] = "yes"
        let head = ResponseHead.encode(status: .ok, headers: headers, contentLength: nil)
        #expect(text(head) == "Status: 200 OK\r\nX-Kept: yes\r\n\r\n")
    }

    @Test func contentLengthIsAddedOnlyWhenAbsentAndAllowed() {
        let own = ResponseHead.encode(status: .ok, headers: [.contentLength: "5"], contentLength: 5)
        #expect(text(own) == "Status: 200 OK\r\nContent-Length: 5\r\n\r\n")
        let unknown = ResponseHead.encode(status: .ok, headers: [:], contentLength: nil)
        #expect(text(unknown) == "Status: 200 OK\r\n\r\n")
        let empty = ResponseHead.encode(status: .ok, headers: [:], contentLength: 0)
        #expect(text(empty) == "Status: 200 OK\r\nContent-Length: 0\r\n\r\n")
        for status: HTTPResponse.Status in [.noContent, .notModified, .continue, .switchingProtocols] {
            #expect(
                !text(ResponseHead.encode(status: status, headers: [:], contentLength: 0)).contains("Content-Length")
            )
        }
    }

    @Test func allowsBody() {
        #expect(ResponseHead.allowsBody(.ok))
        #expect(ResponseHead.allowsBody(.notFound))
        #expect(!ResponseHead.allowsBody(.noContent))
        #expect(!ResponseHead.allowsBody(.notModified))
        #expect(!ResponseHead.allowsBody(.continue))
    }

    @Test func keepsHeaderOrderAndRepeats() {
        var headers = HTTPFields()
        headers.append(HTTPField(name: .setCookie, value: "a=1"))
        headers.append(HTTPField(name: .contentType, value: "text/html"))
        headers.append(HTTPField(name: .setCookie, value: "b=2"))
        let head = ResponseHead.encode(status: .ok, headers: headers, contentLength: nil)
        #expect(text(head) == "Status: 200 OK\r\nSet-Cookie: a=1\r\nContent-Type: text/html\r\nSet-Cookie: b=2\r\n\r\n")
    }
}
