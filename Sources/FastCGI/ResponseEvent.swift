import NIOCore

/// One thing an application told the web server, as decoded by `ResponseDecoder` (client side).
public enum ResponseEvent: Sendable, Equatable {
    /// Response bytes: non-empty, a slice of the caller's buffer, reported as they arrive.
    case stdout(requestID: UInt16, ByteBuffer)
    /// The empty STDOUT record.
    case stdoutEnd(requestID: UInt16)
    /// Error-log bytes: non-empty, a slice of the caller's buffer.
    case stderr(requestID: UInt16, ByteBuffer)
    /// The empty STDERR record.
    case stderrEnd(requestID: UInt16)
    /// `FCGI_END_REQUEST`: the request is over.
    case endRequest(requestID: UInt16, appStatus: UInt32, protocolStatus: ProtocolStatus)
    /// `FCGI_GET_VALUES_RESULT`: the variables the application reported, in order.
    case getValuesResult([(String, String)])
    /// `FCGI_UNKNOWN_TYPE`: the application did not understand a management record of this type.
    case unknownType(UInt8)

    /// Compares case by case; the pairs of `getValuesResult` element by element.
    public static func == (lhs: ResponseEvent, rhs: ResponseEvent) -> Bool {
        switch (lhs, rhs) {
        case (.stdout(let a, let x), .stdout(let b, let y)): a == b && x == y
        case (.stdoutEnd(let a), .stdoutEnd(let b)): a == b
        case (.stderr(let a, let x), .stderr(let b, let y)): a == b && x == y
        case (.stderrEnd(let a), .stderrEnd(let b)): a == b
        case (.endRequest(let a, let x, let p), .endRequest(let b, let y, let q)): a == b && x == y && p == q
        case (.getValuesResult(let x), .getValuesResult(let y)): x.elementsEqual(y) { $0 == $1 }
        case (.unknownType(let x), .unknownType(let y)): x == y
        default: false
        }
    }
}
