import FastCGI
import NIOCore

/// What to send, where, and for how long; the encoded requests are built once, up front.
struct LoadPlan: Sendable {
    enum Target: Sendable, CustomStringConvertible {
        case unix(String)
        case tcp(String, Int)

        var description: String {
            switch self {
            case .unix(let path): "unix:\(path)"
            case .tcp(let host, let port): "\(host):\(port)"
            }
        }
    }

    let target: Target
    let connections: Int
    let inFlight: Int
    let requests: Int
    let duration: TimeAmount
    let timeout: TimeAmount
    let path: String
    let keepConnection: Bool
    let uploadBytes: Int
    let download: Bool

    /// BEGIN_REQUEST + PARAMS (+ the empty STDIN when there is no body), per request id 1...inFlight.
    let heads: [ByteBuffer]
    /// The encoded request body per request id 1...inFlight; empty without --upload.
    let uploads: [UploadBody]

    init(
        target: Target,
        connections: Int,
        inFlight: Int,
        requests: Int,
        duration: TimeAmount,
        timeout: TimeAmount,
        path: String,
        extraParams: [(String, String)] = [],
        keepConnection: Bool,
        uploadBytes: Int,
        download: Bool
    ) {
        self.target = target
        self.connections = connections
        self.inFlight = inFlight
        self.requests = requests
        self.duration = duration
        self.timeout = timeout
        self.path = path
        self.keepConnection = keepConnection
        self.uploadBytes = uploadBytes
        self.download = download

        let params = Self.params(path: path, bodyBytes: uploadBytes) + extraParams
        self.heads = (1...inFlight).map { index in
            let id = UInt16(index)
            var buffer = ByteBuffer()
            RequestEncoder.writeBeginRequest(requestID: id, keepConnection: keepConnection, into: &buffer)
            RequestEncoder.writeParams(params, requestID: id, into: &buffer)
            if uploadBytes == 0 { RequestEncoder.writeStdinEnd(requestID: id, into: &buffer) }
            return buffer
        }
        // Encoded before the clock starts, so the first request's latency is not the encoding's.
        let recordsPerBlock = max(1, 16 / inFlight)
        self.uploads =
            uploadBytes == 0
            ? []
            : (1...inFlight).map {
                UploadBody(bytes: uploadBytes, requestID: UInt16($0), recordsPerBlock: recordsPerBlock)
            }
    }

    /// The CGI variables nginx's stock `fastcgi_params` would send for this request.
    private static func params(path: String, bodyBytes: Int) -> [(String, String)] {
        let parts = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let scriptPath = String(parts[0])
        let query = parts.count > 1 ? String(parts[1]) : ""
        return [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_SOFTWARE", "fcgi-load"),
            ("REQUEST_METHOD", bodyBytes > 0 ? "POST" : "GET"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", scriptPath),
            ("QUERY_STRING", query),
            ("REQUEST_URI", path),
            ("DOCUMENT_URI", scriptPath),
            ("CONTENT_TYPE", bodyBytes > 0 ? "application/octet-stream" : ""),
            ("CONTENT_LENGTH", bodyBytes > 0 ? String(bodyBytes) : ""),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "40000"),
            ("SERVER_ADDR", "127.0.0.1"),
            ("SERVER_PORT", "80"),
            ("SERVER_NAME", "localhost"),
        ]
    }
}

/// A request body as STDIN records, encoded once per request id and then written by reference:
/// a block of full records repeated, a tail, and the empty STDIN record.
struct UploadBody: Sendable {
    /// Content bytes per full record: the largest multiple of 8 under 65536, so no padding.
    private static let recordContent = 65528

    let block: ByteBuffer
    let blockCount: Int
    let tail: ByteBuffer

    init(bytes total: Int, requestID: UInt16, recordsPerBlock: Int) {
        let content = [UInt8](repeating: UInt8(ascii: "u"), count: Self.recordContent)
        let blockContent = Self.recordContent * recordsPerBlock
        var block = ByteBuffer()
        for _ in 0..<recordsPerBlock {
            RequestEncoder.writeStdin(content, requestID: requestID, into: &block)
        }
        self.block = block
        self.blockCount = total / blockContent
        var tail = ByteBuffer()
        var rest = total % blockContent
        while rest > 0 {
            let count = min(rest, Self.recordContent)
            RequestEncoder.writeStdin(content[..<count], requestID: requestID, into: &tail)
            rest -= count
        }
        RequestEncoder.writeStdinEnd(requestID: requestID, into: &tail)
        self.tail = tail
    }
}
