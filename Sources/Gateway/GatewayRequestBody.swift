import Synchronization

/// Where a server's request body bytes come from. Servers implement it; applications never do.
///
/// `read()` is `nonisolated(nonsending)` so that a CGI process can read standard input on
/// the caller's executor without a hop to the global concurrent executor.
public protocol RequestBodySource: Sendable {
    /// The next chunk of the body (never empty), or nil at its end.
    nonisolated(nonsending) func read() async throws -> [UInt8]?
}

/// The request body as an async sequence of byte chunks (`wsgi.input`).
///
/// It never yields more than `CONTENT_LENGTH` bytes when the server sent one, so an
/// application can read to the end without trusting the client. Read it once.
public struct GatewayRequestBody: AsyncSequence, Sendable {
    /// A chunk of body bytes.
    public typealias Element = [UInt8]
    /// Reading fails with ``RequestBodyIncomplete`` when the body ends early, with
    /// ``RequestBodyTooLarge`` past a limit, or with `CancellationError`.
    public typealias Failure = any Error

    private let source: (any RequestBodySource)?
    private let limit: Int?

    /// The length the request declared (`CONTENT_LENGTH`), nil when unknown: like
    /// `HTTPBody.Length` in swift-openapi-runtime, for bridges that need it up front.
    public var declaredLength: Int? { limit }

    /// A body read from `source`, cut at `contentLength` bytes when that is known.
    public init(source: any RequestBodySource, contentLength: Int?) {
        self.source = source
        self.limit = contentLength
    }

    /// A body held in memory, for tests and in-process calls.
    public init(bytes: [UInt8]) {
        self.source = bytes.isEmpty ? nil : InMemorySource(bytes: bytes)
        self.limit = bytes.count
    }

    /// No body at all.
    public static let empty = GatewayRequestBody(bytes: [])

    /// Starts reading the body; the iterator stops at `CONTENT_LENGTH` and throws if the body ends early.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(source: source, expected: limit, remaining: limit, received: 0)
    }

    /// Reads the whole body, throwing ``RequestBodyTooLarge`` past `maximum` bytes.
    nonisolated(nonsending) public func collect(upTo maximum: Int) async throws -> [UInt8] {
        var iterator = makeAsyncIterator()
        guard var collected = try await iterator.nextChunk() else { return [] }
        guard collected.count <= maximum else { throw RequestBodyTooLarge(maximum: maximum) }
        while let chunk = try await iterator.nextChunk() {
            guard collected.count + chunk.count <= maximum else { throw RequestBodyTooLarge(maximum: maximum) }
            collected.append(contentsOf: chunk)
        }
        return collected
    }

    /// Reads and drops the rest of the body, returning how many bytes there were.
    @discardableResult nonisolated(nonsending) public func discard() async throws -> Int {
        var iterator = makeAsyncIterator()
        var count = 0
        while let chunk = try await iterator.nextChunk() { count += chunk.count }
        return count
    }

    /// Iterates the body's chunks.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: (any RequestBodySource)?
        let expected: Int?
        var remaining: Int?
        var received: Int

        /// The next chunk, cut so that the total never passes `CONTENT_LENGTH`; throws
        /// ``RequestBodyIncomplete`` when the body ends before it, with this body's counts.
        nonisolated(nonsending) public mutating func nextChunk() async throws -> [UInt8]? {
            guard let source, remaining != 0 else { return nil }
            let next: [UInt8]?
            do {
                next = try await source.read()
            } catch var incomplete as RequestBodyIncomplete {
                incomplete.received = received
                incomplete.expected = expected
                throw incomplete
            }
            guard var chunk = next else {
                if let expected, let left = remaining, left > 0 {
                    throw RequestBodyIncomplete(reason: .endOfInput, received: received, expected: expected)
                }
                remaining = 0
                return nil
            }
            if let left = remaining {
                if chunk.count > left { chunk.removeLast(chunk.count - left) }
                remaining = left - chunk.count
            }
            received += chunk.count
            return chunk
        }

        /// The next chunk of the body, or nil at its end; throws ``RequestBodyIncomplete`` when it ends early.
        public mutating func next() async throws -> [UInt8]? {
            try await nextChunk()
        }

        /// The next chunk without leaving the caller's actor, or nil at the body's end.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> [UInt8]? {
            try await nextChunk()
        }
    }
}

/// Thrown by ``GatewayRequestBody/collect(upTo:)`` when the body is larger than the caller allows,
/// and by a server's body past the server's own limit. An application that lets it escape
/// before its response began gets a `413` instead of a `500`: the client sent too much.
public struct RequestBodyTooLarge: Error, CustomStringConvertible {
    /// The limit that was passed.
    public let maximum: Int
    /// The limit in words, for logs.
    public var description: String { "request body larger than \(maximum) bytes" }

    /// The error for a body past `maximum` bytes.
    public init(maximum: Int) {
        self.maximum = maximum
    }
}

private final class InMemorySource: RequestBodySource {
    private let bytes: Mutex<[UInt8]?>
    init(bytes: [UInt8]) { self.bytes = Mutex(bytes) }
    nonisolated(nonsending) func read() async throws -> [UInt8]? {
        bytes.withLock { bytes in
            defer { bytes = nil }
            return bytes
        }
    }
}
