import Gateway
import GatewayTestHarness

/// An environ made of exactly these variables, as a server would build it.
func environ(
    _ pairs: KeyValuePairs<String, String>,
    body: [UInt8] = [],
    errors: ErrorStream = .discarding
) -> Environ {
    Environ(
        variables: CGIVariables(pairs.map { ($0.key, $0.value) }),
        input: GatewayRequestBody(bytes: body),
        errors: errors,
        multithread: false,
        multiprocess: true,
        runOnce: true
    )
}

/// A body source handing out the given chunks, then the end.
final class ChunkSource: RequestBodySource, @unchecked Sendable {
    private var chunks: [[UInt8]]
    private(set) var reads = 0

    init(_ chunks: [[UInt8]]) { self.chunks = chunks }

    nonisolated(nonsending) func read() async throws -> [UInt8]? {
        reads += 1
        return chunks.isEmpty ? nil : chunks.removeFirst()
    }
}

/// Runs `application` through the ResponseDriver into memory.
func drive(
    _ application: some GatewayApplication,
    environ: Environ = environ(["REQUEST_METHOD": "GET", "PATH_INFO": "/"]),
    output: MemoryOutput = MemoryOutput()
) async -> (ResponseOutcome, MemoryOutput) {
    var output = output
    let outcome = await ResponseDriver.run(application, environ: environ, output: &output)
    return (outcome, output)
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
