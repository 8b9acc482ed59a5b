import Synchronization

/// The id that ties together every log line about one request: the application's (through
/// ``Environ/logger``), the server's, and the web server's access log.
///
/// It is the web server's own id when it sent one in `X-Request-ID` (nginx:
/// `fastcgi_param HTTP_X_REQUEST_ID $request_id;`, or a load balancer's header passed on)
/// and it looks like an id: 1 to 128 characters from letters, digits and `-._:+/=@`.
/// Anything else (missing, too long, with spaces or quotes that would garble a log line) is
/// replaced by one generated here: 16 hex digits, a random per-process start plus a counter,
/// so making one costs an atomic increment and formatting happens only when it is logged.
public struct GatewayRequestID: Sendable, Hashable, CustomStringConvertible {
    private enum Storage: Sendable, Hashable {
        case received(String)
        case generated(UInt64)
    }

    private let storage: Storage

    /// The id for a request with these variables: its `HTTP_X_REQUEST_ID` when sane, else a new one.
    public init(variables: CGIVariables) {
        if let index = variables.lastIndex(named: "HTTP_X_REQUEST_ID") {
            let value = variables.value(at: index)
            if Self.isSane(value) {
                storage = .received(value)
                return
            }
        }
        storage = .generated(Self.next())
    }

    /// The id exactly as text; for a received one, the header's value.
    public var description: String {
        switch storage {
        case .received(let value):
            return value
        case .generated(let number):
            let hex = String(number, radix: 16)
            return String(repeating: "0", count: 16 - hex.utf8.count) + hex
        }
    }

    /// Whether the web server sent this id (`X-Request-ID`) rather than the gateway making it.
    public var wasReceived: Bool {
        if case .received = storage { return true }
        return false
    }

    static func isSane(_ value: String) -> Bool {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                continue
            case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "+"),
                UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "@"):
                continue
            default:
                return false
            }
        }
        return true
    }

    /// Random per process, so ids from two processes (or two CGI runs) do not collide.
    private static let start = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(0)

    private static func next() -> UInt64 {
        start &+ counter.wrappingAdd(1, ordering: .relaxed).oldValue
    }
}
