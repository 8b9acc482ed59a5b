/// The role a web server asks the application to play (FastCGI 1.0, §6).
///
/// A struct rather than an enum because any `UInt16` can arrive on the wire (role 99 does) and the
/// server must still see it to answer `FCGI_UNKNOWN_ROLE`.
public struct Role: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The role number as sent in `FCGI_BEGIN_REQUEST`.
    public var rawValue: UInt16

    /// Wraps any role number, known or not.
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// `FCGI_RESPONDER`: the classic CGI role, the only one most web servers use.
    public static let responder = Role(rawValue: 1)
    /// `FCGI_AUTHORIZER`: decides whether a request may proceed.
    public static let authorizer = Role(rawValue: 2)
    /// `FCGI_FILTER`: filters a file passed on the DATA stream.
    public static let filter = Role(rawValue: 3)

    /// A readable name for logs.
    public var description: String {
        switch rawValue {
        case 1: "responder"
        case 2: "authorizer"
        case 3: "filter"
        default: "role \(rawValue)"
        }
    }
}
