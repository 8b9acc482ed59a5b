import FastCGI

/// Why a test client wait failed.
public enum FastCGITestClientError: Error, CustomStringConvertible, Equatable {
    /// Nothing matching arrived in time.
    case timedOut(String)
    /// The server closed the connection before what was awaited arrived.
    case connectionClosed(String)
    /// The server sent something the response decoder rejects.
    case protocolError(FastCGIError)

    /// What went wrong, for the test failure.
    public var description: String {
        switch self {
        case .timedOut(let what): "timed out waiting for \(what)"
        case .connectionClosed(let what): "connection closed while waiting for \(what)"
        case .protocolError(let error): "server sent a malformed stream: \(error)"
        }
    }
}

extension ResponseEvent {
    /// The request id the event belongs to (0 for management records).
    public var requestID: UInt16 {
        switch self {
        case .stdout(let id, _), .stdoutEnd(let id), .stderr(let id, _), .stderrEnd(let id): id
        case .endRequest(let id, _, _): id
        case .getValuesResult, .unknownType: 0
        }
    }
}
