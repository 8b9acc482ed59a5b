/// Where the development server listens, as written on a command line: `127.0.0.1:8080`,
/// `[::1]:8080`, `localhost:0`, or `:8080` (127.0.0.1). Parsing never traps: a bad value is
/// a ``ParseError`` saying what is wrong, so a flag like `--http` can report it.
public struct HTTPServerAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address, without brackets.
    public var host: String
    /// The TCP port; 0 lets the kernel pick one.
    public var port: Int

    /// An address from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[ipv6]:port` or `:port` (host 127.0.0.1).
    public init(parsing text: String) throws(ParseError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ParseError(text, "an IPv6 address needs a closing ']'")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ParseError(text, "expected ':port' after the IPv6 address") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ParseError(text, "expected host:port, e.g. 127.0.0.1:8080")
            }
            hostPart = text[..<colon]
            guard !hostPart.contains(":") else {
                throw ParseError(text, "write an IPv6 address in brackets: [::1]:8080")
            }
            portPart = text[text.index(after: colon)...]
        }
        guard portPart.utf8.count <= 5, let port = Int(decimalDigits: String(portPart)), port <= 65535 else {
            throw ParseError(text, "the port must be a number from 0 to 65535")
        }
        self.host = hostPart.isEmpty ? "127.0.0.1" : String(hostPart)
        self.port = port
    }

    /// The address as `--http` takes it back (`host:port`, IPv6 in brackets), for the startup log line.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Why a listening address could not be parsed.
    public struct ParseError: Error, CustomStringConvertible {
        /// What was given.
        public let text: String
        /// What is wrong with it.
        public let reason: String

        init(_ text: String, _ reason: String) {
            self.text = text
            self.reason = reason
        }

        /// The rejected text and why, so the command line can name the bad value.
        public var description: String { "invalid HTTP address '\(text)': \(reason)" }
    }
}
