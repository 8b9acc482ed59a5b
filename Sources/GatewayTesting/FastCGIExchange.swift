internal import GatewayTestHarness

/// One request over a fresh FastCGI connection, as a web server without `fastcgi_keep_conn`
/// sends it: the `.fastCGI` transport's exchange.
enum FastCGIExchange {
    /// Sends `request` (its CGI variables as PARAMS, its body as STDIN) to the server on
    /// `socketPath` and parses the STDOUT stream as a CGI response; at most 60 s.
    static func perform(_ request: TestRequest, socketPath: String) async throws -> TestResponse {
        let variables = TestEnvironment.rootMount.variables(for: request).map { ($0.name, $0.value) }
        let client = try await FastCGITestClient.connect(unixPath: socketPath)
        let answer: FastCGITestResponse
        do {
            // The body is sent while the response is read, as a web server does: an application
            // that answers as it reads (an echo) would otherwise fill both directions' buffers.
            let head = FastCGITestRequest(params: variables).encodedHead()
            try await client.send(head)
            answer = try await withThrowingTaskGroup(of: FastCGITestResponse?.self) { group in
                group.addTask {
                    // A server may answer and close before reading the whole body, as it may to a
                    // web server; the response, not this write, says how the request ended.
                    try? await client.sendStdin(request.body, requestID: 1)
                    try? await client.sendStdinEnd(requestID: 1)
                    return nil
                }
                group.addTask { try await client.response(for: 1, timeout: .seconds(60)) }
                for try await result in group {
                    // Closing ends a write of the body the server no longer reads, so the group
                    // never waits on it.
                    if let result {
                        await client.close()
                        return result
                    }
                }
                throw GatewayTestError("the FastCGI client ended without a response")
            }
        } catch {
            await client.close()
            throw GatewayTestError("the FastCGI exchange for \(request.method) \(request.target) failed: \(error)")
        }
        await client.close()
        guard answer.isCompleteAndWellFormed else {
            throw GatewayTestError(
                "the FastCGI server ended \(request.method) \(request.target) abnormally (\(answer.protocolStatus))"
            )
        }
        var response = try ResponseParser.parseCGI(answer.stdout)
        response.errors = String(decoding: answer.stderr, as: UTF8.self)
        return response
    }
}
