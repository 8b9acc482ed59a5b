/// A transport could not carry a request (nginx missing, an executable not built, a malformed
/// response): a failure of the test's set-up, never of the application, whose failures are
/// responses (a thrown error is a `500`).
public struct GatewayTestError: Error, CustomStringConvertible {
    /// What went wrong and how to fix it.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
